// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ICommon} from "../../src/interfaces/ICommon.sol";
import {IGridInit} from "../../src/interfaces/IGridInit.sol";
import {IPausable} from "../../src/interfaces/IPausable.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {GridFixture} from "../utils/GridFixture.sol";

/// @dev Shared helpers for the payments tests.
abstract contract PaymentsBase is GridFixture {
    address internal payer = makeAddr("payer");
    address internal payer2 = makeAddr("payer2");
    address internal gateway = makeAddr("gateway");
    address internal gateway2 = makeAddr("gateway2");
    address internal worker = makeAddr("worker");
    address internal worker2 = makeAddr("worker2");
    address internal stranger = makeAddr("stranger");

    bytes32 internal constant ROOT = keccak256("root-1");

    function _deposit(address who, uint256 amount) internal {
        _fund(who, amount);
        vm.prank(who);
        grid.deposit(amount);
    }

    /// @dev Raises `who`'s cap for `gw` by `cap` (from 0 in these tests: the cap becomes `cap`).
    function _approveGateway(address who, address gw, uint256 cap) internal {
        vm.prank(who);
        grid.increaseGatewayCap(gw, cap);
    }

    /// @dev payer deposits `amount`, approves `gateway` for it; worker is bonded.
    function _setUpPair(uint256 amount) internal {
        _deposit(payer, amount);
        _approveGateway(payer, gateway, amount);
        _bondWorker(worker, WORKER_MIN);
    }

    function _debit(address who, uint256 amount) internal pure returns (IPayments.PayerDebit[] memory d) {
        d = new IPayments.PayerDebit[](1);
        d[0] = IPayments.PayerDebit({payer: who, amount: amount});
    }

    function _credit(address who, uint256 gross) internal pure returns (IPayments.WorkerCredit[] memory c) {
        c = new IPayments.WorkerCredit[](1);
        c[0] = IPayments.WorkerCredit({worker: who, gross: gross});
    }

    /// @dev `gateway` settles one receipt (its next number) in which `who` pays `to` `amount`.
    function _settle(bytes32 root, address who, address to, uint256 amount) internal returns (uint256) {
        return _settleAs(gateway, root, 1, who, to, amount);
    }

    /// @dev `gw` settles `count` receipt numbers from its next one, `who` paying `to` `amount`.
    function _settleAs(address gw, bytes32 root, uint32 count, address who, address to, uint256 amount)
        internal
        returns (uint256)
    {
        uint64 firstSeq = grid.nextReceiptSeq(gw);
        vm.prank(gw);
        return grid.settle(root, firstSeq, count, _debit(who, amount), _credit(to, amount));
    }

    function _pause() internal {
        vm.prank(owner);
        grid.pause();
    }

    function _split(uint256 gross) internal pure returns (uint256 w, uint256 v, uint256 p) {
        w = gross * WORKER_BPS / 10_000;
        v = gross * VALIDATOR_BPS / 10_000;
        p = gross - w - v;
    }
}

contract PaymentsDepositTest is PaymentsBase {
    function test_deposit_creditsPayerAndPullsTokens() public {
        _fund(payer, 100e18);
        vm.expectEmit(address(grid));
        emit IPayments.Deposited(payer, payer, 100e18);
        vm.prank(payer);
        grid.deposit(100e18);

        IPayments.DepositInfo memory info = grid.depositOf(payer);
        assertEq(info.balance, 100e18);
        assertEq(info.withdrawRequested, 0);
        assertEq(info.withdrawReadyAt, 0);
        assertEq(aipg.balanceOf(address(grid)), 100e18);
        assertEq(aipg.balanceOf(payer), 0);
    }

    function test_deposit_accumulates() public {
        _deposit(payer, 1e18);
        _deposit(payer, 2e18);
        assertEq(grid.depositOf(payer).balance, 3e18);
    }

    function test_deposit_revertsWhenZero() public {
        vm.prank(payer);
        vm.expectRevert(ICommon.ZeroAmount.selector);
        grid.deposit(0);
    }

    function test_deposit_revertsWhenPaused() public {
        _fund(payer, 1e18);
        _pause();
        vm.prank(payer);
        vm.expectRevert(IPausable.EnforcedPause.selector);
        grid.deposit(1e18);
    }

    function test_deposit_revertsWithoutAllowance() public {
        aipg.mint(payer, 1e18);
        vm.prank(payer);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(grid), 0, 1e18)
        );
        grid.deposit(1e18);
    }

    function test_depositFor_creditsPayerPullsFromSender() public {
        _fund(stranger, 5e18);
        vm.expectEmit(address(grid));
        emit IPayments.Deposited(payer, stranger, 5e18);
        vm.prank(stranger);
        grid.depositFor(payer, 5e18);

        assertEq(grid.depositOf(payer).balance, 5e18);
        assertEq(grid.depositOf(stranger).balance, 0);
        assertEq(aipg.balanceOf(stranger), 0);
        assertEq(aipg.balanceOf(address(grid)), 5e18);
    }

    function test_depositFor_revertsWhenPayerZero() public {
        _fund(stranger, 5e18);
        vm.prank(stranger);
        vm.expectRevert(ICommon.ZeroAddress.selector);
        grid.depositFor(address(0), 5e18);
    }

    function test_depositFor_revertsWhenZero() public {
        vm.prank(stranger);
        vm.expectRevert(ICommon.ZeroAmount.selector);
        grid.depositFor(payer, 0);
    }

    function test_depositFor_revertsWhenPaused() public {
        _fund(stranger, 5e18);
        _pause();
        vm.prank(stranger);
        vm.expectRevert(IPausable.EnforcedPause.selector);
        grid.depositFor(payer, 5e18);
    }

    function testFuzz_deposit_creditsExactly(uint256 amount) public {
        amount = bound(amount, 1, 1e36);
        _deposit(payer, amount);
        assertEq(grid.depositOf(payer).balance, amount);
        assertEq(aipg.balanceOf(address(grid)), amount);
    }
}

contract PaymentsPermitTest is PaymentsBase {
    bytes32 private constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    address internal signer;
    uint256 internal signerKey;

    function setUp() public override {
        super.setUp();
        (signer, signerKey) = makeAddrAndKey("permit-signer");
        aipg.mint(signer, 100e18);
    }

    function _sign(uint256 value, uint256 deadline) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        bytes32 structHash = keccak256(
            abi.encode(PERMIT_TYPEHASH, signer, address(grid), value, aipg.nonces(signer), deadline)
        );
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", aipg.DOMAIN_SEPARATOR(), structHash));
        (v, r, s) = vm.sign(signerKey, digest);
    }

    function test_depositWithPermit_depositsWithoutPriorApprove() public {
        (uint8 v, bytes32 r, bytes32 s) = _sign(40e18, block.timestamp);
        vm.expectEmit(address(grid));
        emit IPayments.Deposited(signer, signer, 40e18);
        vm.prank(signer);
        grid.depositWithPermit(40e18, block.timestamp, v, r, s);

        assertEq(grid.depositOf(signer).balance, 40e18);
        assertEq(aipg.balanceOf(signer), 60e18);
        assertEq(aipg.allowance(signer, address(grid)), 0);
    }

    function test_depositWithPermit_toleratesFrontRunPermit() public {
        (uint8 v, bytes32 r, bytes32 s) = _sign(40e18, block.timestamp);
        // someone submits the permit first: the signature is spent but the allowance is set
        vm.prank(stranger);
        aipg.permit(signer, address(grid), 40e18, block.timestamp, v, r, s);

        vm.prank(signer);
        grid.depositWithPermit(40e18, block.timestamp, v, r, s);
        assertEq(grid.depositOf(signer).balance, 40e18);
    }

    function test_depositWithPermit_revertsWithPermitErrorWhenSignatureBad() public {
        (uint8 v, bytes32 r, bytes32 s) = _sign(40e18, block.timestamp);
        // signed for 40, used for 50: the permit recovers another signer and there is no allowance
        vm.prank(signer);
        vm.expectPartialRevert(ERC20Permit.ERC2612InvalidSigner.selector);
        grid.depositWithPermit(50e18, block.timestamp, v, r, s);
    }

    function test_depositWithPermit_revertsWhenExpired() public {
        uint256 deadline = block.timestamp;
        (uint8 v, bytes32 r, bytes32 s) = _sign(40e18, deadline);
        vm.warp(deadline + 1);
        vm.prank(signer);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612ExpiredSignature.selector, deadline));
        grid.depositWithPermit(40e18, deadline, v, r, s);
    }

    function test_depositWithPermit_revertsWhenPaused() public {
        (uint8 v, bytes32 r, bytes32 s) = _sign(40e18, block.timestamp);
        _pause();
        vm.prank(signer);
        vm.expectRevert(IPausable.EnforcedPause.selector);
        grid.depositWithPermit(40e18, block.timestamp, v, r, s);
    }

    function test_depositWithPermit_revertsWhenZero() public {
        (uint8 v, bytes32 r, bytes32 s) = _sign(0, block.timestamp);
        vm.prank(signer);
        vm.expectRevert(ICommon.ZeroAmount.selector);
        grid.depositWithPermit(0, block.timestamp, v, r, s);
    }
}

contract PaymentsGatewayTest is PaymentsBase {
    function test_increaseGatewayCap_raisesCapAndEmits() public {
        vm.expectEmit(address(grid));
        emit IPayments.GatewayApproved(payer, gateway, 7e18);
        vm.prank(payer);
        grid.increaseGatewayCap(gateway, 7e18);
        assertEq(grid.gatewayAllowance(payer, gateway), 7e18);
        assertEq(grid.gatewayAllowance(payer, gateway2), 0);
        assertEq(grid.gatewayAllowance(gateway, payer), 0);

        // relative: a second increase adds, and the event carries the new cap
        vm.expectEmit(address(grid));
        emit IPayments.GatewayApproved(payer, gateway, 10e18);
        vm.prank(payer);
        grid.increaseGatewayCap(gateway, 3e18);
        assertEq(grid.gatewayAllowance(payer, gateway), 10e18);
    }

    function testFuzz_increaseGatewayCap_saturatesAtUnlimited(uint256 first, uint256 second) public {
        _approveGateway(payer, gateway, first);
        uint256 expected = second > type(uint256).max - first ? type(uint256).max : first + second;
        vm.expectEmit(address(grid));
        emit IPayments.GatewayApproved(payer, gateway, expected);
        vm.prank(payer);
        grid.increaseGatewayCap(gateway, second);
        assertEq(grid.gatewayAllowance(payer, gateway), expected);
    }

    function test_increaseGatewayCap_toUnlimitedStaysUnlimited() public {
        _approveGateway(payer, gateway, 5e18);
        _approveGateway(payer, gateway, type(uint256).max);
        assertEq(grid.gatewayAllowance(payer, gateway), type(uint256).max);
        _approveGateway(payer, gateway, 1);
        assertEq(grid.gatewayAllowance(payer, gateway), type(uint256).max);
    }

    function test_decreaseGatewayCap_lowersCapAndEmits() public {
        _approveGateway(payer, gateway, 7e18);
        vm.expectEmit(address(grid));
        emit IPayments.GatewayApproved(payer, gateway, 3e18);
        vm.prank(payer);
        grid.decreaseGatewayCap(gateway, 4e18);
        assertEq(grid.gatewayAllowance(payer, gateway), 3e18);
    }

    function testFuzz_decreaseGatewayCap_saturatesAtZero(uint256 cap, uint256 amount) public {
        _approveGateway(payer, gateway, cap);
        uint256 expected = amount >= cap ? 0 : cap - amount;
        vm.expectEmit(address(grid));
        emit IPayments.GatewayApproved(payer, gateway, expected);
        vm.prank(payer);
        grid.decreaseGatewayCap(gateway, amount);
        assertEq(grid.gatewayAllowance(payer, gateway), expected);
    }

    function test_decreaseGatewayCap_byMaxRevokesUnlimited() public {
        _approveGateway(payer, gateway, type(uint256).max);
        vm.prank(payer);
        grid.decreaseGatewayCap(gateway, type(uint256).max);
        assertEq(grid.gatewayAllowance(payer, gateway), 0);
    }

    function test_decreaseGatewayCap_onlyTouchesCallersCap() public {
        _approveGateway(payer, gateway, 7e18);
        _approveGateway(payer2, gateway, 7e18);
        vm.prank(payer2);
        grid.decreaseGatewayCap(gateway, 7e18);
        assertEq(grid.gatewayAllowance(payer, gateway), 7e18);
        assertEq(grid.gatewayAllowance(payer2, gateway), 0);
    }

    function test_increaseGatewayCap_revertsWhenGatewayZero() public {
        vm.prank(payer);
        vm.expectRevert(ICommon.ZeroAddress.selector);
        grid.increaseGatewayCap(address(0), 1);
    }

    function test_decreaseGatewayCap_revertsWhenGatewayZero() public {
        vm.prank(payer);
        vm.expectRevert(ICommon.ZeroAddress.selector);
        grid.decreaseGatewayCap(address(0), 1);
    }

    function test_decreaseGatewayCap_worksWhilePaused() public {
        _approveGateway(payer, gateway, 7e18);
        _pause();
        vm.prank(payer);
        grid.decreaseGatewayCap(gateway, 7e18);
        assertEq(grid.gatewayAllowance(payer, gateway), 0);
    }

    function test_increaseGatewayCap_worksWhilePaused() public {
        _pause();
        _approveGateway(payer, gateway, 7e18);
        assertEq(grid.gatewayAllowance(payer, gateway), 7e18);
    }

    /// @dev The ERC-20 approve race is gone: a payer lowering a cap from N to M with
    /// `decreaseGatewayCap(N - M)` while the gateway front-runs with a settlement of `taken` <= N lets the
    /// gateway take max(taken, M) <= N in all, never N + M.
    function testFuzz_decreaseGatewayCap_frontRunSettlementTakesAtMostTheOldCap(
        uint256 n,
        uint256 m,
        uint256 taken
    ) public {
        n = bound(n, 1, 1e30);
        m = bound(m, 0, n);
        taken = bound(taken, 1, n);
        _deposit(payer, 3 * n);
        _approveGateway(payer, gateway, n);
        _bondWorker(worker, WORKER_MIN);

        // the gateway's settlement lands first, then the payer's decrease
        _settle(keccak256("front-run"), payer, worker, taken);
        vm.prank(payer);
        grid.decreaseGatewayCap(gateway, n - m);

        // the gateway then takes whatever cap is left
        uint256 left = grid.gatewayAllowance(payer, gateway);
        assertEq(left, taken >= m ? 0 : m - taken);
        if (left != 0) _settle(keccak256("rest"), payer, worker, left);
        uint64 firstSeq = grid.nextReceiptSeq(gateway);
        vm.prank(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.GatewayCapExceeded.selector, payer, gateway, 1, 0));
        grid.settle(keccak256("more"), firstSeq, 1, _debit(payer, 1), _credit(worker, 1));

        uint256 total = 3 * n - grid.depositOf(payer).balance;
        assertEq(total, taken > m ? taken : m);
        assertLe(total, n, "never more than the old cap");
    }

    /// @dev The other order: the decrease lands first, the gateway can take at most M.
    function testFuzz_decreaseGatewayCap_beforeSettlementLeavesTheNewCap(uint256 n, uint256 m, uint256 taken)
        public
    {
        n = bound(n, 1, 1e30);
        m = bound(m, 0, n);
        taken = bound(taken, 1, n);
        _deposit(payer, n);
        _approveGateway(payer, gateway, n);
        _bondWorker(worker, WORKER_MIN);

        vm.prank(payer);
        grid.decreaseGatewayCap(gateway, n - m);
        assertEq(grid.gatewayAllowance(payer, gateway), m);

        uint64 firstSeq = grid.nextReceiptSeq(gateway);
        vm.prank(gateway);
        if (taken > m) {
            vm.expectRevert(
                abi.encodeWithSelector(IPayments.GatewayCapExceeded.selector, payer, gateway, taken, m)
            );
        }
        grid.settle(ROOT, firstSeq, 1, _debit(payer, taken), _credit(worker, taken));
        assertLe(n - grid.depositOf(payer).balance, m);
    }
}

contract PaymentsWithdrawDepositTest is PaymentsBase {
    function test_requestDepositWithdrawal_recordsRequest() public {
        _deposit(payer, 10e18);
        uint64 readyAt = uint64(block.timestamp + DEPOSIT_DELAY);
        vm.expectEmit(address(grid));
        emit IPayments.DepositWithdrawalRequested(payer, 4e18, readyAt);
        vm.prank(payer);
        grid.requestDepositWithdrawal(4e18);

        IPayments.DepositInfo memory info = grid.depositOf(payer);
        assertEq(info.balance, 10e18, "balance stays until withdrawn");
        assertEq(info.withdrawRequested, 4e18);
        assertEq(info.withdrawReadyAt, readyAt);
    }

    function test_requestDepositWithdrawal_replacesEarlierRequestAndRestartsDelay() public {
        _deposit(payer, 10e18);
        vm.prank(payer);
        grid.requestDepositWithdrawal(4e18);
        vm.warp(block.timestamp + DEPOSIT_DELAY / 2);
        vm.prank(payer);
        grid.requestDepositWithdrawal(6e18);

        IPayments.DepositInfo memory info = grid.depositOf(payer);
        assertEq(info.withdrawRequested, 6e18);
        assertEq(info.withdrawReadyAt, uint64(block.timestamp + DEPOSIT_DELAY));
    }

    function test_requestDepositWithdrawal_revertsWhenZero() public {
        _deposit(payer, 10e18);
        vm.prank(payer);
        vm.expectRevert(ICommon.ZeroAmount.selector);
        grid.requestDepositWithdrawal(0);
    }

    function test_requestDepositWithdrawal_revertsAboveBalance() public {
        _deposit(payer, 10e18);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IPayments.InsufficientDeposit.selector, payer, 11e18, 10e18));
        grid.requestDepositWithdrawal(11e18);
    }

    function test_requestDepositWithdrawal_worksWhilePaused() public {
        _deposit(payer, 10e18);
        _pause();
        vm.prank(payer);
        grid.requestDepositWithdrawal(10e18);
        assertEq(grid.depositOf(payer).withdrawRequested, 10e18);
    }

    function test_withdrawDeposit_revertsWithoutRequest() public {
        _deposit(payer, 10e18);
        vm.prank(payer);
        vm.expectRevert(IPayments.NothingToWithdraw.selector);
        grid.withdrawDeposit();
    }

    function test_withdrawDeposit_revertsBeforeReady() public {
        _deposit(payer, 10e18);
        vm.prank(payer);
        grid.requestDepositWithdrawal(4e18);
        uint64 readyAt = uint64(block.timestamp + DEPOSIT_DELAY);
        vm.warp(readyAt - 1);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IPayments.WithdrawalNotReady.selector, readyAt, readyAt - 1));
        grid.withdrawDeposit();
    }

    function test_withdrawDeposit_sendsRequestedAtReadyAt() public {
        _deposit(payer, 10e18);
        vm.prank(payer);
        grid.requestDepositWithdrawal(4e18);
        vm.warp(block.timestamp + DEPOSIT_DELAY);

        vm.expectEmit(address(grid));
        emit IPayments.DepositWithdrawn(payer, 4e18);
        vm.prank(payer);
        grid.withdrawDeposit();

        IPayments.DepositInfo memory info = grid.depositOf(payer);
        assertEq(info.balance, 6e18);
        assertEq(info.withdrawRequested, 0);
        assertEq(info.withdrawReadyAt, 0);
        assertEq(aipg.balanceOf(payer), 4e18);
        assertEq(aipg.balanceOf(address(grid)), 6e18);

        vm.prank(payer);
        vm.expectRevert(IPayments.NothingToWithdraw.selector);
        grid.withdrawDeposit();
    }

    function test_withdrawDeposit_sendsOnlyWhatSettlementLeft() public {
        _setUpPair(10e18);
        vm.prank(payer);
        grid.requestDepositWithdrawal(8e18);
        // the gateway still settles against the full balance during the delay
        _settle(ROOT, payer, worker, 7e18);
        vm.warp(block.timestamp + DEPOSIT_DELAY);

        vm.expectEmit(address(grid));
        emit IPayments.DepositWithdrawn(payer, 3e18);
        vm.prank(payer);
        grid.withdrawDeposit();
        assertEq(aipg.balanceOf(payer), 3e18);
        assertEq(grid.depositOf(payer).balance, 0);
    }

    function test_withdrawDeposit_closesRequestWhenBalanceSpent() public {
        _setUpPair(10e18);
        vm.prank(payer);
        grid.requestDepositWithdrawal(10e18);
        _settle(ROOT, payer, worker, 10e18);
        vm.warp(block.timestamp + DEPOSIT_DELAY);

        vm.expectEmit(address(grid));
        emit IPayments.DepositWithdrawn(payer, 0);
        vm.prank(payer);
        grid.withdrawDeposit();
        assertEq(aipg.balanceOf(payer), 0);
        assertEq(grid.depositOf(payer).withdrawRequested, 0);
        assertEq(grid.depositOf(payer).withdrawReadyAt, 0);
    }

    function test_withdrawDeposit_worksWhilePaused() public {
        _deposit(payer, 10e18);
        vm.prank(payer);
        grid.requestDepositWithdrawal(10e18);
        _pause();
        vm.warp(block.timestamp + DEPOSIT_DELAY);
        vm.prank(payer);
        grid.withdrawDeposit();
        assertEq(aipg.balanceOf(payer), 10e18);
    }

    function test_withdrawDeposit_onlyTouchesCallersDeposit() public {
        _deposit(payer, 10e18);
        vm.prank(payer);
        grid.requestDepositWithdrawal(10e18);
        vm.warp(block.timestamp + DEPOSIT_DELAY);
        vm.prank(stranger);
        vm.expectRevert(IPayments.NothingToWithdraw.selector);
        grid.withdrawDeposit();
        assertEq(grid.depositOf(payer).balance, 10e18);
    }

    function testFuzz_withdrawDeposit_timing(uint256 amount, uint256 requested, uint256 wait) public {
        amount = bound(amount, 1, 1e30);
        requested = bound(requested, 1, amount);
        wait = bound(wait, 0, 3 * DEPOSIT_DELAY);
        _deposit(payer, amount);
        vm.prank(payer);
        grid.requestDepositWithdrawal(requested);
        uint64 readyAt = uint64(block.timestamp + DEPOSIT_DELAY);
        vm.warp(block.timestamp + wait);

        vm.prank(payer);
        if (wait < DEPOSIT_DELAY) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IPayments.WithdrawalNotReady.selector, readyAt, uint64(block.timestamp)
                )
            );
            grid.withdrawDeposit();
            assertEq(grid.depositOf(payer).balance, amount);
        } else {
            grid.withdrawDeposit();
            assertEq(aipg.balanceOf(payer), requested);
            assertEq(grid.depositOf(payer).balance, amount - requested);
        }
    }

    function testFuzz_withdrawDeposit_neverExceedsBalanceAfterSettlement(
        uint256 amount,
        uint256 requested,
        uint256 spent
    ) public {
        amount = bound(amount, 1, 1e30);
        requested = bound(requested, 1, amount);
        spent = bound(spent, 1, amount);
        _setUpPair(amount);
        vm.prank(payer);
        grid.requestDepositWithdrawal(requested);
        _settle(ROOT, payer, worker, spent);
        vm.warp(block.timestamp + DEPOSIT_DELAY);
        vm.prank(payer);
        grid.withdrawDeposit();

        uint256 expected = requested < amount - spent ? requested : amount - spent;
        assertEq(aipg.balanceOf(payer), expected);
        assertEq(grid.depositOf(payer).balance, amount - spent - expected);
    }
}

contract PaymentsSettleTest is PaymentsBase {
    function test_settle_debitsPayersCreditsWorkersAndRecordsBatch() public {
        _deposit(payer, 100e18);
        _deposit(payer2, 50e18);
        _approveGateway(payer, gateway, 80e18);
        _approveGateway(payer2, gateway, 50e18);
        _bondWorker(worker, WORKER_MIN);
        _bondWorker(worker2, WORKER_MIN);

        IPayments.PayerDebit[] memory debits = new IPayments.PayerDebit[](2);
        debits[0] = IPayments.PayerDebit({payer: payer, amount: 30e18});
        debits[1] = IPayments.PayerDebit({payer: payer2, amount: 10e18});
        IPayments.WorkerCredit[] memory credits = new IPayments.WorkerCredit[](2);
        credits[0] = IPayments.WorkerCredit({worker: worker, gross: 25e18});
        credits[1] = IPayments.WorkerCredit({worker: worker2, gross: 15e18});
        (uint256 w1, uint256 v1, uint256 p1) = _split(25e18);
        (uint256 w2, uint256 v2, uint256 p2) = _split(15e18);

        vm.expectEmit(address(grid));
        emit IPayments.PayerDebited(1, payer, 30e18);
        vm.expectEmit(address(grid));
        emit IPayments.PayerDebited(1, payer2, 10e18);
        vm.expectEmit(address(grid));
        emit IPayments.WorkerCredited(1, worker, 25e18, w1);
        vm.expectEmit(address(grid));
        emit IPayments.WorkerCredited(1, worker2, 15e18, w2);
        vm.expectEmit(address(grid));
        emit IPayments.BatchSettled(1, gateway, ROOT, 42, 40e18, 0);
        vm.roll(777);
        vm.warp(1_700_000_000);
        vm.prank(gateway);
        uint256 id = grid.settle(ROOT, 0, 42, debits, credits);

        assertEq(id, 1);
        assertEq(grid.batchCount(), 1);
        assertTrue(grid.isSettled(ROOT));
        IPayments.Batch memory b = grid.getBatch(1);
        assertEq(b.root, ROOT);
        assertEq(b.gateway, gateway);
        assertEq(b.receiptCount, 42);
        assertEq(b.settledAt, 1_700_000_000);
        assertEq(b.settledBlock, 777);
        assertEq(b.total, 40e18);
        assertEq(b.firstSeq, 0);
        assertEq(b.rewardLeft, v1 + v2, "the batch's validator share");
        assertEq(grid.nextReceiptSeq(gateway), 42);

        assertEq(grid.depositOf(payer).balance, 70e18);
        assertEq(grid.depositOf(payer2).balance, 40e18);
        assertEq(grid.gatewayAllowance(payer, gateway), 50e18);
        assertEq(grid.gatewayAllowance(payer2, gateway), 40e18);
        assertEq(grid.earningsOf(worker), w1);
        assertEq(grid.earningsOf(worker2), w2);
        assertEq(grid.validatorPool(), v1 + v2);
        assertEq(grid.protocolFees(), p1 + p2);
        assertEq(w1, 20e18);
        assertEq(v1, 3.75e18);
        assertEq(p1, 1.25e18);
    }

    function test_settle_idsIncrementFromOne() public {
        _setUpPair(10e18);
        assertEq(_settle(keccak256("a"), payer, worker, 1e18), 1);
        assertEq(_settle(keccak256("b"), payer, worker, 1e18), 2);
        assertEq(grid.batchCount(), 2);
        assertEq(grid.getBatch(2).root, keccak256("b"));
    }

    function test_settle_protocolGetsRoundingRemainder() public {
        _setUpPair(10e18);
        _settle(ROOT, payer, worker, 1); // 1 wei: worker 0, validators 0, protocol 1
        assertEq(grid.earningsOf(worker), 0);
        assertEq(grid.validatorPool(), 0);
        assertEq(grid.protocolFees(), 1);
    }

    function test_settle_revertsWhenPaused() public {
        _setUpPair(10e18);
        _pause();
        vm.prank(gateway);
        vm.expectRevert(IPausable.EnforcedPause.selector);
        grid.settle(ROOT, 0, 1, _debit(payer, 1e18), _credit(worker, 1e18));
    }

    function test_settle_revertsWhenRootZero() public {
        _setUpPair(10e18);
        vm.prank(gateway);
        vm.expectRevert(IPayments.ZeroRoot.selector);
        grid.settle(bytes32(0), 0, 1, _debit(payer, 1e18), _credit(worker, 1e18));
    }

    function test_settle_revertsWhenRootReused() public {
        _setUpPair(10e18);
        _settle(ROOT, payer, worker, 1e18);
        vm.prank(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.BatchAlreadySettled.selector, ROOT));
        grid.settle(ROOT, 1, 1, _debit(payer, 1e18), _credit(worker, 1e18));
    }

    function test_settle_revertsWhenRootReusedByAnotherGateway() public {
        _setUpPair(10e18);
        _approveGateway(payer, gateway2, 10e18);
        _settle(ROOT, payer, worker, 1e18);
        vm.prank(gateway2);
        vm.expectRevert(abi.encodeWithSelector(IPayments.BatchAlreadySettled.selector, ROOT));
        grid.settle(ROOT, 0, 1, _debit(payer, 1e18), _credit(worker, 1e18));
    }

    function test_settle_revertsWhenNoReceipts() public {
        _setUpPair(10e18);
        vm.prank(gateway);
        vm.expectRevert(IPayments.EmptyBatch.selector);
        grid.settle(ROOT, 0, 0, _debit(payer, 1e18), _credit(worker, 1e18));
    }

    function test_settle_revertsWhenNoDebits() public {
        _setUpPair(10e18);
        vm.prank(gateway);
        vm.expectRevert(IPayments.EmptyBatch.selector);
        grid.settle(ROOT, 0, 1, new IPayments.PayerDebit[](0), _credit(worker, 1e18));
    }

    function test_settle_revertsWhenNoCredits() public {
        _setUpPair(10e18);
        vm.prank(gateway);
        vm.expectRevert(IPayments.EmptyBatch.selector);
        grid.settle(ROOT, 0, 1, _debit(payer, 1e18), new IPayments.WorkerCredit[](0));
    }

    function test_settle_revertsWhenGatewayNotApproved() public {
        _setUpPair(10e18);
        vm.prank(gateway2);
        vm.expectRevert(
            abi.encodeWithSelector(IPayments.GatewayCapExceeded.selector, payer, gateway2, 1e18, 0)
        );
        grid.settle(ROOT, 0, 1, _debit(payer, 1e18), _credit(worker, 1e18));
    }

    function test_settle_revertsAboveCap() public {
        _deposit(payer, 10e18);
        _approveGateway(payer, gateway, 2e18);
        _bondWorker(worker, WORKER_MIN);
        vm.prank(gateway);
        vm.expectRevert(
            abi.encodeWithSelector(IPayments.GatewayCapExceeded.selector, payer, gateway, 3e18, 2e18)
        );
        grid.settle(ROOT, 0, 1, _debit(payer, 3e18), _credit(worker, 3e18));
    }

    function test_settle_capIsConsumedAcrossBatches() public {
        _deposit(payer, 10e18);
        _approveGateway(payer, gateway, 3e18);
        _bondWorker(worker, WORKER_MIN);
        _settle(keccak256("a"), payer, worker, 2e18);
        assertEq(grid.gatewayAllowance(payer, gateway), 1e18);
        vm.prank(gateway);
        vm.expectRevert(
            abi.encodeWithSelector(IPayments.GatewayCapExceeded.selector, payer, gateway, 2e18, 1e18)
        );
        grid.settle(keccak256("b"), 1, 1, _debit(payer, 2e18), _credit(worker, 2e18));
    }

    function test_settle_unlimitedCapIsNotDecremented() public {
        _deposit(payer, 10e18);
        _approveGateway(payer, gateway, type(uint256).max);
        _bondWorker(worker, WORKER_MIN);
        _settle(ROOT, payer, worker, 4e18);
        assertEq(grid.gatewayAllowance(payer, gateway), type(uint256).max);
        assertEq(grid.depositOf(payer).balance, 6e18);
    }

    function test_settle_revertsAboveDeposit() public {
        _deposit(payer, 10e18);
        _approveGateway(payer, gateway, 100e18);
        _bondWorker(worker, WORKER_MIN);
        vm.prank(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.InsufficientDeposit.selector, payer, 11e18, 10e18));
        grid.settle(ROOT, 0, 1, _debit(payer, 11e18), _credit(worker, 11e18));
    }

    function test_settle_revertsWhenRepeatedPayerExceedsDeposit() public {
        _deposit(payer, 10e18);
        _approveGateway(payer, gateway, 100e18);
        _bondWorker(worker, WORKER_MIN);
        IPayments.PayerDebit[] memory debits = new IPayments.PayerDebit[](2);
        debits[0] = IPayments.PayerDebit({payer: payer, amount: 6e18});
        debits[1] = IPayments.PayerDebit({payer: payer, amount: 6e18});
        vm.prank(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.InsufficientDeposit.selector, payer, 6e18, 4e18));
        grid.settle(ROOT, 0, 2, debits, _credit(worker, 12e18));
    }

    function test_settle_revertsForUnknownWorker() public {
        _setUpPair(10e18);
        vm.prank(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.UnknownWorker.selector, stranger));
        grid.settle(ROOT, 0, 1, _debit(payer, 1e18), _credit(stranger, 1e18));
    }

    function test_settle_revertsForValidatorOnlyBond() public {
        _setUpPair(10e18);
        _bondValidator(stranger, VALIDATOR_MIN);
        vm.prank(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.UnknownWorker.selector, stranger));
        grid.settle(ROOT, 0, 1, _debit(payer, 1e18), _credit(stranger, 1e18));
    }

    function test_settle_creditsUnbondingWorker() public {
        _setUpPair(10e18);
        vm.prank(worker);
        grid.requestWorkerUnbond(WORKER_MIN);
        _settle(ROOT, payer, worker, 1e18);
        (uint256 w,,) = _split(1e18);
        assertEq(grid.earningsOf(worker), w);
    }

    function test_settle_revertsForWithdrawnWorker() public {
        _setUpPair(10e18);
        vm.prank(worker);
        grid.requestWorkerUnbond(WORKER_MIN);
        vm.warp(block.timestamp + UNBOND_DELAY);
        vm.prank(worker);
        grid.withdrawWorkerBond();
        vm.prank(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.UnknownWorker.selector, worker));
        grid.settle(ROOT, 0, 1, _debit(payer, 1e18), _credit(worker, 1e18));
    }

    function test_settle_revertsWhenDebitsExceedCredits() public {
        _setUpPair(10e18);
        vm.prank(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.SumMismatch.selector, 2e18, 1e18));
        grid.settle(ROOT, 0, 1, _debit(payer, 2e18), _credit(worker, 1e18));
    }

    function test_settle_revertsWhenCreditsExceedDebits() public {
        _setUpPair(10e18);
        vm.prank(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.SumMismatch.selector, 1e18, 2e18));
        grid.settle(ROOT, 0, 1, _debit(payer, 1e18), _credit(worker, 2e18));
    }

    function test_settle_revertsWhenCreditsOverflow() public {
        _setUpPair(10e18);
        _bondWorker(worker2, WORKER_MIN);
        // two credits that would wrap around to 1e18 in unchecked arithmetic
        IPayments.WorkerCredit[] memory credits = new IPayments.WorkerCredit[](2);
        credits[0] = IPayments.WorkerCredit({worker: worker, gross: type(uint256).max});
        credits[1] = IPayments.WorkerCredit({worker: worker2, gross: 1e18 + 1});
        vm.prank(gateway);
        vm.expectRevert(); // arithmetic panic
        grid.settle(ROOT, 0, 1, _debit(payer, 1e18), credits);
    }

    function test_settle_leavesNothingOnRevert() public {
        _setUpPair(10e18);
        vm.prank(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.SumMismatch.selector, 1e18, 2e18));
        grid.settle(ROOT, 0, 1, _debit(payer, 1e18), _credit(worker, 2e18));
        assertFalse(grid.isSettled(ROOT));
        assertEq(grid.batchCount(), 0);
        assertEq(grid.depositOf(payer).balance, 10e18);
    }

    function testFuzz_settle_splitAddsUpToGross(uint256 gross, uint16 workerBps, uint16 validatorBps) public {
        workerBps = uint16(bound(workerBps, 0, 10_000));
        validatorBps = uint16(bound(validatorBps, 0, 10_000 - workerBps));
        IGridInit.InitArgs memory args = _defaultInitArgs();
        args.workerBps = workerBps;
        args.validatorBps = validatorBps;
        args.protocolBps = 10_000 - workerBps - validatorBps;
        grid = _deployGrid(args);
        gross = bound(gross, 1, 1e36);
        _setUpPair(gross);

        _settle(ROOT, payer, worker, gross);

        uint256 w = grid.earningsOf(worker);
        uint256 v = grid.validatorPool();
        uint256 p = grid.protocolFees();
        assertEq(w + v + p, gross, "shares sum to gross");
        assertEq(w, gross * workerBps / 10_000);
        assertEq(v, gross * validatorBps / 10_000);
        assertEq(aipg.balanceOf(address(grid)), w + v + p + WORKER_MIN);
    }

    function testFuzz_settle_respectsCap(uint256 deposit, uint256 cap, uint256 amount) public {
        deposit = bound(deposit, 1, 1e30);
        cap = bound(cap, 0, 1e30);
        amount = bound(amount, 1, 1e30);
        _deposit(payer, deposit);
        _approveGateway(payer, gateway, cap);
        _bondWorker(worker, WORKER_MIN);

        vm.prank(gateway);
        if (amount > cap) {
            vm.expectRevert(
                abi.encodeWithSelector(IPayments.GatewayCapExceeded.selector, payer, gateway, amount, cap)
            );
        } else if (amount > deposit) {
            vm.expectRevert(
                abi.encodeWithSelector(IPayments.InsufficientDeposit.selector, payer, amount, deposit)
            );
        }
        grid.settle(ROOT, 0, 1, _debit(payer, amount), _credit(worker, amount));

        if (amount <= cap && amount <= deposit) {
            assertEq(grid.gatewayAllowance(payer, gateway), cap - amount);
            assertEq(grid.depositOf(payer).balance, deposit - amount);
        } else {
            assertEq(grid.gatewayAllowance(payer, gateway), cap);
            assertEq(grid.depositOf(payer).balance, deposit);
        }
    }

    function testFuzz_settle_manyPayersAndWorkers(uint8 nPayers, uint8 nWorkers, uint256 seed) public {
        nPayers = uint8(bound(nPayers, 1, 12));
        nWorkers = uint8(bound(nWorkers, 1, 12));
        IPayments.PayerDebit[] memory debits = new IPayments.PayerDebit[](nPayers);
        uint256 total;
        for (uint256 i; i < nPayers; ++i) {
            address p = makeAddr(string.concat("payer-", vm.toString(i)));
            uint256 amount = bound(uint256(keccak256(abi.encode(seed, "p", i))), 1, 1e24);
            _deposit(p, amount);
            _approveGateway(p, gateway, amount);
            debits[i] = IPayments.PayerDebit({payer: p, amount: amount});
            total += amount;
        }
        IPayments.WorkerCredit[] memory credits = new IPayments.WorkerCredit[](nWorkers);
        uint256 left = total;
        uint256 expectedWorkers;
        for (uint256 i; i < nWorkers; ++i) {
            address w = makeAddr(string.concat("worker-", vm.toString(i)));
            _bondWorker(w, WORKER_MIN);
            uint256 gross =
                i == nWorkers - 1 ? left : bound(uint256(keccak256(abi.encode(seed, "w", i))), 0, left);
            left -= gross;
            credits[i] = IPayments.WorkerCredit({worker: w, gross: gross});
            expectedWorkers += gross * WORKER_BPS / 10_000;
        }

        vm.prank(gateway);
        grid.settle(ROOT, 0, 1000, debits, credits);

        uint256 earned;
        for (uint256 i; i < nWorkers; ++i) {
            earned += grid.earningsOf(credits[i].worker);
            assertEq(grid.earningsOf(credits[i].worker), credits[i].gross * WORKER_BPS / 10_000);
        }
        assertEq(earned, expectedWorkers);
        assertEq(earned + grid.validatorPool() + grid.protocolFees(), total);
        for (uint256 i; i < nPayers; ++i) {
            assertEq(grid.depositOf(debits[i].payer).balance, 0);
        }
        assertEq(grid.getBatch(1).total, total);
    }
}

/// @notice Receipt numbers: every gateway settles its receipts once, in order, in contiguous ranges.
contract PaymentsSequenceTest is PaymentsBase {
    function setUp() public override {
        super.setUp();
        _setUpPair(1_000e18);
        _approveGateway(payer, gateway2, 1_000e18);
    }

    function test_nextReceiptSeq_isZeroBeforeTheFirstBatch() public view {
        assertEq(grid.nextReceiptSeq(gateway), 0);
        assertEq(grid.nextReceiptSeq(gateway2), 0);
        assertEq(grid.nextReceiptSeq(stranger), 0);
    }

    function testFuzz_settle_advancesNextReceiptSeqByReceiptCount(uint32 first, uint32 second) public {
        first = uint32(bound(first, 1, type(uint32).max));
        second = uint32(bound(second, 1, type(uint32).max));
        uint256 a = _settleAs(gateway, keccak256("a"), first, payer, worker, 1e18);
        assertEq(grid.nextReceiptSeq(gateway), first);
        uint256 b = _settleAs(gateway, keccak256("b"), second, payer, worker, 1e18);
        assertEq(grid.nextReceiptSeq(gateway), uint64(first) + second);

        assertEq(grid.getBatch(a).firstSeq, 0);
        assertEq(grid.getBatch(a).receiptCount, first);
        assertEq(grid.getBatch(b).firstSeq, first, "ranges are contiguous");
        assertEq(grid.getBatch(b).receiptCount, second);
    }

    function test_settle_emitsBatchSettledWithFirstSeq() public {
        _settleAs(gateway, keccak256("a"), 5, payer, worker, 1e18);
        vm.expectEmit(address(grid));
        emit IPayments.BatchSettled(2, gateway, keccak256("b"), 7, 2e18, 5);
        _settleAs(gateway, keccak256("b"), 7, payer, worker, 2e18);
    }

    function test_settle_revertsWhenReplayed() public {
        bytes32 root = keccak256("a");
        vm.prank(gateway);
        grid.settle(root, 0, 3, _debit(payer, 1e18), _credit(worker, 1e18));
        // the very same call again: the root is taken (and its range too)
        vm.prank(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.BatchAlreadySettled.selector, root));
        grid.settle(root, 0, 3, _debit(payer, 1e18), _credit(worker, 1e18));
        // the same range under a new root
        vm.prank(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.SequenceMismatch.selector, gateway, 3, 0));
        grid.settle(keccak256("b"), 0, 3, _debit(payer, 1e18), _credit(worker, 1e18));
        // a range overlapping its end
        vm.prank(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.SequenceMismatch.selector, gateway, 3, 2));
        grid.settle(keccak256("b"), 2, 3, _debit(payer, 1e18), _credit(worker, 1e18));
        assertEq(grid.nextReceiptSeq(gateway), 3);
        assertEq(grid.batchCount(), 1);
    }

    function testFuzz_settle_revertsWhenFirstSeqIsNotNext(uint32 settled, uint64 firstSeq) public {
        settled = uint32(bound(settled, 1, type(uint32).max));
        _settleAs(gateway, keccak256("a"), settled, payer, worker, 1e18);
        vm.assume(firstSeq != settled);
        vm.prank(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.SequenceMismatch.selector, gateway, settled, firstSeq));
        grid.settle(keccak256("b"), firstSeq, 1, _debit(payer, 1e18), _credit(worker, 1e18));
    }

    function test_settle_revertsWhenSkippingAhead() public {
        vm.prank(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.SequenceMismatch.selector, gateway, 0, 1));
        grid.settle(ROOT, 1, 1, _debit(payer, 1e18), _credit(worker, 1e18));
        assertEq(grid.nextReceiptSeq(gateway), 0);
    }

    function test_settle_revertsWhenUsingAnotherGatewaysRange() public {
        _settleAs(gateway, keccak256("a"), 10, payer, worker, 1e18);
        // gateway2 has settled nothing: it must start at 0, not where gateway is
        vm.prank(gateway2);
        vm.expectRevert(abi.encodeWithSelector(IPayments.SequenceMismatch.selector, gateway2, 0, 10));
        grid.settle(keccak256("b"), 10, 1, _debit(payer, 1e18), _credit(worker, 1e18));
    }

    function testFuzz_settle_rangesOfTwoGatewaysAreIndependent(uint32 countA, uint32 countB) public {
        countA = uint32(bound(countA, 1, 1_000_000));
        countB = uint32(bound(countB, 1, 1_000_000));
        uint256 a1 = _settleAs(gateway, keccak256("a1"), countA, payer, worker, 1e18);
        uint256 b1 = _settleAs(gateway2, keccak256("b1"), countB, payer, worker, 1e18);
        uint256 a2 = _settleAs(gateway, keccak256("a2"), countB, payer, worker, 1e18);
        uint256 b2 = _settleAs(gateway2, keccak256("b2"), countA, payer, worker, 1e18);

        assertEq(grid.getBatch(a1).firstSeq, 0);
        assertEq(grid.getBatch(b1).firstSeq, 0, "gateway2 numbers from 0 whatever gateway did");
        assertEq(grid.getBatch(a2).firstSeq, countA);
        assertEq(grid.getBatch(b2).firstSeq, countB);
        assertEq(grid.nextReceiptSeq(gateway), uint64(countA) + countB);
        assertEq(grid.nextReceiptSeq(gateway2), uint64(countA) + countB);
        assertEq(grid.getBatch(b1).gateway, gateway2);
    }

    /// @dev Re-settling already settled receipts plus one extra leaf (a new root) cannot reuse their
    /// numbers: the new batch must start at `nextReceiptSeq`, so it covers a different range, and an audit
    /// of an old receipt against it fails its range check (its `seq` lies in the first batch's range).
    function test_settle_resettlingSameReceiptsWithExtraLeafGetsADifferentRange() public {
        bytes32[] memory leaves = new bytes32[](3);
        leaves[0] = keccak256("receipt 0");
        leaves[1] = keccak256("receipt 1");
        leaves[2] = keccak256("receipt 2");
        bytes32 root = keccak256(abi.encode(leaves));
        vm.prank(gateway);
        uint256 first = grid.settle(root, 0, 3, _debit(payer, 3e18), _credit(worker, 3e18));

        // the same three signed receipts (numbered 0, 1, 2) plus an extra leaf under a new root
        bytes32[] memory more = new bytes32[](4);
        for (uint256 i; i < 3; ++i) {
            more[i] = leaves[i];
        }
        more[3] = keccak256("extra");
        bytes32 root2 = keccak256(abi.encode(more));
        vm.prank(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.SequenceMismatch.selector, gateway, 3, 0));
        grid.settle(root2, 0, 4, _debit(payer, 4e18), _credit(worker, 4e18));

        // settling it anyway means numbers 3..6: none of 0..2, so the old receipts are not in it
        vm.prank(gateway);
        uint256 second = grid.settle(root2, 3, 4, _debit(payer, 4e18), _credit(worker, 4e18));
        IPayments.Batch memory a = grid.getBatch(first);
        IPayments.Batch memory b = grid.getBatch(second);
        assertEq(a.firstSeq, 0);
        assertEq(a.receiptCount, 3);
        assertEq(b.firstSeq, 3);
        assertEq(b.receiptCount, 4);
        assertGe(b.firstSeq, a.firstSeq + a.receiptCount, "the ranges do not overlap");
    }

    function test_settle_revertsWhenBatchPaysNothing() public {
        vm.prank(gateway);
        vm.expectRevert(IPayments.EmptyBatch.selector);
        grid.settle(ROOT, 0, 1, _debit(payer, 0), _credit(worker, 0));
        assertEq(grid.nextReceiptSeq(gateway), 0, "the range is not taken");
        assertFalse(grid.isSettled(ROOT));
    }

    function testFuzz_settle_storesRewardLeftAsTheValidatorShare(uint256[3] memory grosses) public {
        _bondWorker(worker2, WORKER_MIN);
        address worker3 = makeAddr("worker3");
        _bondWorker(worker3, WORKER_MIN);
        address[3] memory workers = [worker, worker2, worker3];
        IPayments.WorkerCredit[] memory credits = new IPayments.WorkerCredit[](3);
        uint256 total;
        uint256 share;
        for (uint256 i; i < 3; ++i) {
            grosses[i] = bound(grosses[i], 0, 300e18);
            credits[i] = IPayments.WorkerCredit({worker: workers[i], gross: grosses[i]});
            total += grosses[i];
            share += grosses[i] * VALIDATOR_BPS / 10_000;
        }
        vm.assume(total != 0);
        vm.prank(gateway);
        uint256 id = grid.settle(ROOT, 0, 3, _debit(payer, total), credits);
        assertEq(grid.getBatch(id).rewardLeft, share, "sum of floor(gross * validatorBps / 1e4)");
        assertEq(grid.validatorPool(), share);
    }
}

contract PaymentsEarningsTest is PaymentsBase {
    function test_withdrawEarnings_sendsCallersEarnings() public {
        _setUpPair(10e18);
        _settle(ROOT, payer, worker, 10e18);
        (uint256 w,,) = _split(10e18);
        uint256 before = aipg.balanceOf(worker);

        vm.expectEmit(address(grid));
        emit IPayments.EarningsWithdrawn(worker, w);
        vm.prank(worker);
        grid.withdrawEarnings();
        assertEq(aipg.balanceOf(worker), before + w);
        assertEq(grid.earningsOf(worker), 0);

        vm.prank(worker);
        vm.expectRevert(IPayments.NothingToWithdraw.selector);
        grid.withdrawEarnings();
    }

    function test_withdrawEarnings_revertsWhenNone() public {
        vm.prank(stranger);
        vm.expectRevert(IPayments.NothingToWithdraw.selector);
        grid.withdrawEarnings();
    }

    function test_withdrawEarnings_worksWhilePaused() public {
        _setUpPair(10e18);
        _settle(ROOT, payer, worker, 10e18);
        _pause();
        vm.prank(worker);
        grid.withdrawEarnings();
        assertEq(grid.earningsOf(worker), 0);
    }

    function test_withdrawProtocolFees_sendsToTreasury() public {
        _setUpPair(10e18);
        _settle(ROOT, payer, worker, 10e18);
        (,, uint256 p) = _split(10e18);
        uint256 before = aipg.balanceOf(treasury);

        vm.expectEmit(address(grid));
        emit IPayments.ProtocolFeesWithdrawn(treasury, p);
        vm.prank(stranger); // anyone may trigger it; it only ever pays the treasury
        grid.withdrawProtocolFees();
        assertEq(aipg.balanceOf(treasury), before + p);
        assertEq(grid.protocolFees(), 0);
        assertEq(aipg.balanceOf(stranger), 0);
    }

    function test_withdrawProtocolFees_revertsWhenNone() public {
        vm.expectRevert(IPayments.NothingToWithdraw.selector);
        grid.withdrawProtocolFees();
    }
}

contract PaymentsViewsTest is PaymentsBase {
    function test_views_reportDeployment() public view {
        IPayments.RevenueShares memory s = grid.revenueShares();
        assertEq(s.workerBps, WORKER_BPS);
        assertEq(s.validatorBps, VALIDATOR_BPS);
        assertEq(s.protocolBps, PROTOCOL_BPS);
        assertEq(grid.depositWithdrawDelay(), DEPOSIT_DELAY);
        assertEq(grid.token(), address(aipg));
        assertEq(grid.treasury(), treasury);
        assertEq(grid.batchCount(), 0);
        assertEq(grid.validatorPool(), 0);
        assertEq(grid.protocolFees(), 0);
        assertFalse(grid.isSettled(ROOT));
    }

    function test_getBatch_unknownIdIsZero() public view {
        IPayments.Batch memory b = grid.getBatch(1);
        assertEq(b.root, bytes32(0));
        assertEq(b.gateway, address(0));
        assertEq(b.total, 0);
    }

    function test_init_revertsWhenSharesDoNotSumTo10000() public {
        IGridInit.InitArgs memory args = _defaultInitArgs();
        args.protocolBps += 1;
        _deployFacets();
        vm.expectRevert(abi.encodeWithSelector(IGridInit.InvalidInit.selector, "shares"));
        _deployDiamond(args);
    }

    function test_init_revertsWhenDepositDelayZero() public {
        IGridInit.InitArgs memory args = _defaultInitArgs();
        args.depositWithdrawDelay = 0;
        _deployFacets();
        vm.expectRevert(abi.encodeWithSelector(IGridInit.InvalidInit.selector, "depositWithdrawDelay"));
        _deployDiamond(args);
    }
}
