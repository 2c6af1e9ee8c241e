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

    function harnessPayBatchReward(uint256 batchId, address to, uint256 amount) external returns (uint256) {
        return LibPayments.payBatchReward(batchId, to, amount);
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
        s[2] = PaymentsHarness.harnessPayBatchReward.selector;
        s[3] = PaymentsHarness.harnessBatchIdOf.selector;
        s[4] = PaymentsHarness.harnessReinitialize.selector;
        _executeCut(_singleCut(address(h), IDiamond.FacetCutAction.Add, s), address(0), "");
        harness = PaymentsHarness(address(grid));

        _fund(payer, 100e18);
        vm.startPrank(payer);
        grid.deposit(100e18);
        grid.increaseGatewayCap(gateway, 100e18);
        vm.stopPrank();
        _bondWorker(worker, WORKER_MIN);
    }

    function _settle(bytes32 root, uint256 amount) internal returns (uint256 batchId) {
        IPayments.PayerDebit[] memory d = new IPayments.PayerDebit[](1);
        d[0] = IPayments.PayerDebit({payer: payer, amount: amount});
        IPayments.WorkerCredit[] memory c = new IPayments.WorkerCredit[](1);
        c[0] = IPayments.WorkerCredit({worker: worker, gross: amount});
        uint64 firstSeq = grid.nextReceiptSeq(gateway);
        vm.prank(gateway);
        batchId = grid.settle(root, firstSeq, 1, d, c);
    }

    function _liabilities() internal view returns (uint256) {
        return grid.totalWorkerBonded() + grid.totalValidatorBonded() + grid.depositOf(payer).balance
            + grid.earningsOf(worker) + grid.earningsOf(validator) + grid.validatorPool()
            + grid.protocolFees();
    }

    function test_payBatchReward_movesBatchShareToEarnings() public {
        uint256 id = _settle(keccak256("a"), 60e18); // pool and rewardLeft: 9e18
        assertEq(grid.getBatch(id).rewardLeft, 9e18);
        uint256 paid = harness.harnessPayBatchReward(id, validator, 4e18);
        assertEq(paid, 4e18);
        assertEq(grid.getBatch(id).rewardLeft, 5e18);
        assertEq(grid.validatorPool(), 5e18);
        assertEq(grid.earningsOf(validator), 4e18);
        assertEq(aipg.balanceOf(address(grid)), _liabilities());

        vm.prank(validator);
        grid.withdrawEarnings();
        assertEq(aipg.balanceOf(validator), 4e18);
    }

    function test_payBatchReward_paysAtMostTheBatchShare() public {
        uint256 a = _settle(keccak256("a"), 20e18); // rewardLeft 3e18
        _settle(keccak256("b"), 40e18); // rewardLeft 6e18: the pool holds 9e18
        uint256 paid = harness.harnessPayBatchReward(a, validator, 1_000e18);
        assertEq(paid, 3e18, "never another batch's share");
        assertEq(grid.getBatch(a).rewardLeft, 0);
        assertEq(grid.validatorPool(), 6e18);
        assertEq(grid.earningsOf(validator), 3e18);
        assertEq(harness.harnessPayBatchReward(a, validator, 1), 0);
        assertEq(aipg.balanceOf(address(grid)), _liabilities());
    }

    function test_payBatchReward_eachBatchPaysFromItsOwnShare() public {
        uint256 a = _settle(keccak256("a"), 90e18); // rewardLeft 13.5e18
        uint256 b = _settle(keccak256("b"), 10e18); // rewardLeft 1.5e18
        assertEq(harness.harnessPayBatchReward(b, validator, 2e18), 1.5e18);
        assertEq(harness.harnessPayBatchReward(b, validator, 2e18), 0);
        assertEq(grid.getBatch(a).rewardLeft, 13.5e18, "untouched by b's rewards");
        assertEq(harness.harnessPayBatchReward(a, validator, 2e18), 2e18);
        assertEq(grid.validatorPool(), 11.5e18);
        assertEq(grid.earningsOf(validator), 3.5e18);
    }

    function testFuzz_payBatchReward_neverExceedsShareOrPool(uint256 gross, uint256 amount) public {
        gross = bound(gross, 1, 100e18);
        amount = bound(amount, 0, 100e18);
        uint256 id = _settle(keccak256("a"), gross);
        uint256 share = gross * VALIDATOR_BPS / 10_000;
        uint256 paid = harness.harnessPayBatchReward(id, validator, amount);
        assertEq(paid, amount < share ? amount : share);
        assertEq(grid.getBatch(id).rewardLeft, share - paid);
        assertEq(grid.validatorPool(), share - paid);
        assertEq(aipg.balanceOf(address(grid)), _liabilities());
    }

    function test_payBatchReward_unknownBatchPaysNothing() public {
        _settle(keccak256("a"), 100e18);
        assertEq(harness.harnessPayBatchReward(99, validator, 1e18), 0);
        assertEq(grid.validatorPool(), 15e18);
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
