// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAudit} from "../../src/interfaces/IAudit.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {SecurityFixture} from "./SecurityFixture.sol";

/// @notice Threat model of contracts/README.md, attack 8: a gateway front-runs a payer lowering its cap. Caps
/// move by relative amounts, so a settlement landing first can only leave less, never more, than the payer
/// meant.
contract CapRaceTest is SecurityFixture {
    function setUp() public override {
        super.setUp();
        vm.prank(payer);
        grid.decreaseGatewayCap(gateway, type(uint256).max); // start from no cap
    }

    function _spend(uint256 amount) internal {
        IAudit.Receipt memory r = _receiptAt(gateway, worker, grid.nextReceiptSeq(gateway), amount);
        _settleRaw(gateway, _only(r), grid.nextReceiptSeq(gateway), 1, worker, amount);
    }

    /// Cap C; the payer lowers it by d (meaning "at most C - d more"); the gateway front-runs with a
    /// settlement of x <= C. Whatever the order, the gateway's total is at most max(x, C - d), never the
    /// x + (C - d) of an ERC-20-style approve race.
    function testFuzz_decreaseCap_frontRun_neverGivesTheGatewayMore(uint256 cap, uint256 d, uint256 x, bool frontRun)
        public
    {
        cap = bound(cap, 1, 500_000e18);
        d = bound(d, 0, cap);
        x = bound(x, 1, cap);
        vm.prank(payer);
        grid.increaseGatewayCap(gateway, cap);
        uint256 depositBefore = grid.depositOf(payer).balance;

        if (frontRun) _spend(x);
        vm.prank(payer);
        grid.decreaseGatewayCap(gateway, d);
        uint256 taken = depositBefore - grid.depositOf(payer).balance;
        uint256 left = grid.gatewayAllowance(payer, gateway);
        if (!frontRun && x <= left) {
            _spend(x);
            taken += x;
            left = grid.gatewayAllowance(payer, gateway);
        }
        uint256 meant = cap - d;
        assertLe(taken + left, x > meant ? x : meant, "the gateway can take more than the payer meant");
        assertLe(taken + left, cap);

        _assertNothingBeyond(left);
    }

    /// @dev The gateway cannot take one wei more than `left`.
    function _assertNothingBeyond(uint256 left) internal {
        IAudit.Receipt memory r = _receiptAt(gateway, worker, grid.nextReceiptSeq(gateway), left + 1);
        uint64 next = grid.nextReceiptSeq(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.GatewayCapExceeded.selector, payer, gateway, left + 1, left));
        this.settleAs(r, next, left + 1);
    }

    /// @dev External so expectRevert sees exactly the settle call.
    function settleAs(IAudit.Receipt memory r, uint64 firstSeq, uint256 amount) external {
        _settleRaw(gateway, _only(r), firstSeq, 1, worker, amount);
    }

    /// Increases saturate at unlimited; a decrease by the maximum revokes even an unlimited cap.
    function testFuzz_caps_saturateBothWays(uint256 a, uint256 b) public {
        vm.startPrank(payer);
        grid.increaseGatewayCap(gateway, a);
        grid.increaseGatewayCap(gateway, b);
        uint256 expected = a > type(uint256).max - b ? type(uint256).max : a + b;
        assertEq(grid.gatewayAllowance(payer, gateway), expected);
        grid.decreaseGatewayCap(gateway, type(uint256).max);
        vm.stopPrank();
        assertEq(grid.gatewayAllowance(payer, gateway), 0);
    }

    /// Nobody but the payer moves its caps: a stranger's (or the gateway's) calls only touch its own.
    function testFuzz_caps_onlyThePayerMovesItsOwn(address caller, uint256 amount) public {
        vm.assume(caller != payer && caller != address(0));
        vm.prank(payer);
        grid.increaseGatewayCap(gateway, 5e18);
        vm.startPrank(caller);
        grid.increaseGatewayCap(gateway, amount);
        grid.decreaseGatewayCap(gateway, amount);
        vm.stopPrank();
        assertEq(grid.gatewayAllowance(payer, gateway), 5e18);
    }
}
