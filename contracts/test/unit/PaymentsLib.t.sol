// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IBonding} from "../../src/interfaces/IBonding.sol";
import {IDiamond} from "../../src/interfaces/IDiamond.sol";
import {IGridInit} from "../../src/interfaces/IGridInit.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {LibBonding} from "../../src/libraries/LibBonding.sol";
import {LibPayments} from "../../src/libraries/LibPayments.sol";
import {GridFixture} from "../utils/GridFixture.sol";

/// @notice Test-only facet exposing the LibPayments hooks the audit facet will use (pay validators from the
/// pool, route slashed stake to the pool or to someone's earnings). Added through an announced cut.
contract PaymentsHarness {
    function harnessSlashToPool(address worker, uint256 amount) external returns (uint256 slashed) {
        slashed = LibBonding.slash(IBonding.Role.Worker, worker, amount);
        LibPayments.addToValidatorPool(slashed);
    }

    function harnessSlashToEarnings(address worker, uint256 amount, address to)
        external
        returns (uint256 slashed)
    {
        slashed = LibBonding.slash(IBonding.Role.Worker, worker, amount);
        LibPayments.creditEarnings(to, slashed);
    }

    function harnessPayFromValidatorPool(address to, uint256 amount) external returns (uint256) {
        return LibPayments.payFromValidatorPool(to, amount);
    }

    function harnessBatchIdOf(bytes32 root) external view returns (uint256) {
        return LibPayments.layout().batchIdOf[root];
    }

    function harnessReinitialize() external {
        LibPayments.initialize(1 days, 8_000, 1_500, 500);
    }
}

contract PaymentsLibTest is GridFixture {
    PaymentsHarness internal harness;
    address internal payer = makeAddr("payer");
    address internal gateway = makeAddr("gateway");
    address internal worker = makeAddr("worker");
    address internal validator = makeAddr("validator");

    function setUp() public override {
        super.setUp();
        PaymentsHarness h = new PaymentsHarness();
        bytes4[] memory s = new bytes4[](5);
        s[0] = PaymentsHarness.harnessSlashToPool.selector;
        s[1] = PaymentsHarness.harnessSlashToEarnings.selector;
        s[2] = PaymentsHarness.harnessPayFromValidatorPool.selector;
        s[3] = PaymentsHarness.harnessBatchIdOf.selector;
        s[4] = PaymentsHarness.harnessReinitialize.selector;
        _executeCut(_singleCut(address(h), IDiamond.FacetCutAction.Add, s), address(0), "");
        harness = PaymentsHarness(address(grid));

        _fund(payer, 100e18);
        vm.startPrank(payer);
        grid.deposit(100e18);
        grid.approveGateway(gateway, 100e18);
        vm.stopPrank();
        _bondWorker(worker, WORKER_MIN);
    }

    function _settle(bytes32 root, uint256 amount) internal {
        IPayments.PayerDebit[] memory d = new IPayments.PayerDebit[](1);
        d[0] = IPayments.PayerDebit({payer: payer, amount: amount});
        IPayments.WorkerCredit[] memory c = new IPayments.WorkerCredit[](1);
        c[0] = IPayments.WorkerCredit({worker: worker, gross: amount});
        vm.prank(gateway);
        grid.settle(root, 1, d, c);
    }

    function _liabilities() internal view returns (uint256) {
        return grid.totalWorkerBonded() + grid.totalValidatorBonded() + grid.depositOf(payer).balance
            + grid.earningsOf(worker) + grid.earningsOf(validator) + grid.validatorPool()
            + grid.protocolFees();
    }

    function test_payFromValidatorPool_movesPoolToEarnings() public {
        _settle(keccak256("a"), 100e18); // pool: 15e18
        uint256 paid = harness.harnessPayFromValidatorPool(validator, 4e18);
        assertEq(paid, 4e18);
        assertEq(grid.validatorPool(), 11e18);
        assertEq(grid.earningsOf(validator), 4e18);
        assertEq(aipg.balanceOf(address(grid)), _liabilities());

        vm.prank(validator);
        grid.withdrawEarnings();
        assertEq(aipg.balanceOf(validator), 4e18);
    }

    function test_payFromValidatorPool_paysAtMostThePool() public {
        _settle(keccak256("a"), 100e18);
        uint256 paid = harness.harnessPayFromValidatorPool(validator, 1_000e18);
        assertEq(paid, 15e18);
        assertEq(grid.validatorPool(), 0);
        assertEq(grid.earningsOf(validator), 15e18);
        assertEq(harness.harnessPayFromValidatorPool(validator, 1), 0);
    }

    function test_addToValidatorPool_keepsBooksBalanced() public {
        uint256 slashed = harness.harnessSlashToPool(worker, 300e18);
        assertEq(slashed, 300e18);
        assertEq(grid.validatorPool(), 300e18);
        assertEq(grid.totalWorkerBonded(), WORKER_MIN - 300e18);
        assertEq(aipg.balanceOf(address(grid)), _liabilities());
    }

    function test_creditEarnings_keepsBooksBalanced() public {
        harness.harnessSlashToEarnings(worker, 200e18, validator);
        assertEq(grid.earningsOf(validator), 200e18);
        assertEq(aipg.balanceOf(address(grid)), _liabilities());
        vm.prank(validator);
        grid.withdrawEarnings();
        assertEq(aipg.balanceOf(validator), 200e18);
    }

    function test_batchIdOf_mapsRootsToIds() public {
        _settle(keccak256("a"), 1e18);
        _settle(keccak256("b"), 1e18);
        assertEq(harness.harnessBatchIdOf(keccak256("a")), 1);
        assertEq(harness.harnessBatchIdOf(keccak256("b")), 2);
        assertEq(harness.harnessBatchIdOf(keccak256("c")), 0);
    }

    function test_initialize_revertsWhenCalledAgain() public {
        vm.expectRevert(
            abi.encodeWithSelector(IGridInit.InvalidInit.selector, "payments already initialized")
        );
        harness.harnessReinitialize();
    }
}
