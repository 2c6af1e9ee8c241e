// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IPayments} from "../interfaces/IPayments.sol";
import {LibGrid} from "../libraries/LibGrid.sol";
import {LibPayments} from "../libraries/LibPayments.sol";

/// @title Escrow and settlement facet of the Grid Diamond.
/// @notice Payers deposit AIPG and approve gateways up to a cap; gateways settle batches of signed receipts;
/// workers, and the treasury, withdraw what settlement credited to them.
/// @dev A thin shell over LibPayments: every function updates the books (and emits) first and moves
/// tokens last. Deposits and settlements stop while the diamond is paused; withdrawals never do.
contract PaymentsFacet is IPayments {
    using SafeERC20 for IERC20;

    // ---------------------------------------------------------------- escrow

    /// @notice Deposits `amount` AIPG (pulled from the caller, who must have approved the diamond) into the
    /// caller's escrow.
    /// @param amount AIPG wei, > 0.
    function deposit(uint256 amount) external {
        _deposit(msg.sender, amount);
    }

    /// @notice Deposits `amount` AIPG pulled from the caller into `payer`'s escrow (a sponsor paying for a user).
    /// @param payer Account credited; only it can withdraw the deposit or approve gateways on it.
    /// @param amount AIPG wei, > 0.
    function depositFor(address payer, uint256 amount) external {
        _deposit(payer, amount);
    }

    /// @notice Deposits `amount` into the caller's escrow, approving the diamond with an ERC-2612 permit
    /// signed by the caller instead of a prior `approve`.
    /// @dev If the permit reverts (typically because someone front-ran it and used the signature, which
    /// already set the allowance) the deposit still proceeds when the allowance suffices; otherwise the
    /// permit's revert reason is bubbled up.
    /// @param amount AIPG wei, > 0; also the permit's value.
    /// @param deadline The permit's deadline.
    /// @param v The permit signature's v.
    /// @param r The permit signature's r.
    /// @param s The permit signature's s.
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external {
        address aipg = address(LibGrid.token());
        try IERC20Permit(aipg).permit(msg.sender, address(this), amount, deadline, v, r, s) {}
        catch (bytes memory reason) {
            if (IERC20(aipg).allowance(msg.sender, address(this)) < amount) {
                assembly ("memory-safe") {
                    revert(add(reason, 0x20), mload(reason))
                }
            }
        }
        _deposit(msg.sender, amount);
    }

    /// @inheritdoc IPayments
    /// @dev A cap of type(uint256).max is unlimited and is never lowered by settlements, as with ERC-20
    /// allowances. Emits `GatewayApproved` with the new cap. Reverts `ZeroAddress`.
    /// @param gateway The gateway's settling address.
    /// @param amount AIPG wei added to what the gateway may debit.
    function increaseGatewayCap(address gateway, uint256 amount) external {
        LibPayments.increaseGatewayCap(msg.sender, gateway, amount);
    }

    /// @inheritdoc IPayments
    /// @dev Works while paused. Emits `GatewayApproved` with the new cap. Reverts `ZeroAddress`.
    /// @param gateway The gateway's settling address.
    /// @param amount AIPG wei taken off what the gateway may debit (type(uint256).max revokes it).
    function decreaseGatewayCap(address gateway, uint256 amount) external {
        LibPayments.decreaseGatewayCap(msg.sender, gateway, amount);
    }

    /// @notice Asks to withdraw `amount` of the caller's deposit after the withdrawal delay. Replaces any
    /// earlier request and restarts the delay. Until the withdrawal, gateways can still settle against the
    /// whole balance. Works while paused.
    /// @param amount AIPG wei, > 0 and at most the current balance.
    function requestDepositWithdrawal(uint256 amount) external {
        LibPayments.requestWithdrawal(msg.sender, amount);
    }

    /// @inheritdoc IPayments
    /// @dev When settlements spent the whole balance during the delay, the request is closed and nothing is
    /// sent (DepositWithdrawn with amount 0).
    function withdrawDeposit() external {
        uint256 amount = LibPayments.takeWithdrawal(msg.sender);
        if (amount != 0) LibGrid.token().safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------- settlement

    /// @inheritdoc IPayments
    /// @dev Reverts while paused, on a zero or already settled root (roots are global: no gateway can settle
    /// one twice), `SequenceMismatch` unless `firstSeq` is the caller's next receipt number, on an empty batch
    /// or one that pays nothing, on a debit above the payer's cap for the caller or above the payer's
    /// balance, on a credit to an address with no worker bond (active or unbonding), and when the sums
    /// differ. Each gross is split into floor(gross * workerBps / 10_000) for the worker,
    /// floor(gross * validatorBps / 10_000) for the validator pool and the remainder for the protocol.
    /// @param root Merkle root of the batch's receipts; audits prove receipts against it.
    /// @param firstSeq The first receipt number of the batch: `nextReceiptSeq(msg.sender)`.
    /// @param receiptCount Number of receipts (leaves) under `root`, > 0; their numbers run from `firstSeq`.
    /// @param debits Per-payer amounts; the same payer may appear more than once.
    /// @param credits Per-worker gross amounts, by bond owner.
    /// @return batchId The new batch's id (ids start at 1).
    function settle(
        bytes32 root,
        uint64 firstSeq,
        uint32 receiptCount,
        PayerDebit[] calldata debits,
        WorkerCredit[] calldata credits
    ) external returns (uint256 batchId) {
        LibGrid.requireNotPaused();
        batchId = LibPayments.settle(msg.sender, root, firstSeq, receiptCount, debits, credits);
    }

    /// @inheritdoc IPayments
    function withdrawEarnings() external {
        uint256 amount = LibPayments.takeEarnings(msg.sender);
        LibGrid.token().safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IPayments
    function withdrawProtocolFees() external {
        address to = LibGrid.layout().treasury;
        uint256 amount = LibPayments.takeProtocolFees(to);
        LibGrid.token().safeTransfer(to, amount);
    }

    // ---------------------------------------------------------------- views

    /// @notice A payer's escrow: balance (still including any requested amount), the pending request and
    /// when it can be withdrawn (0 when none).
    /// @param payer The depositor.
    function depositOf(address payer) external view returns (DepositInfo memory) {
        LibPayments.Deposit storage d = LibPayments.layout().deposits[payer];
        return DepositInfo({
            balance: d.balance, withdrawRequested: d.withdrawRequested, withdrawReadyAt: d.withdrawReadyAt
        });
    }

    /// @notice What `gateway` may still debit from `payer` (type(uint256).max: unlimited).
    /// @param payer The depositor.
    /// @param gateway The settling gateway.
    function gatewayAllowance(address payer, address gateway) external view returns (uint256) {
        return LibPayments.layout().gatewayCaps[payer][gateway];
    }

    /// @notice Earnings `account` can withdraw with `withdrawEarnings`.
    /// @param account A worker's bond owner or a validator.
    function earningsOf(address account) external view returns (uint256) {
        return LibPayments.layout().earnings[account];
    }

    /// @notice AIPG set aside to pay validators for audits.
    function validatorPool() external view returns (uint256) {
        return LibPayments.layout().validatorPool;
    }

    /// @notice Protocol fees accrued and not yet sent to the treasury.
    function protocolFees() external view returns (uint256) {
        return LibPayments.layout().protocolFees;
    }

    /// @notice The worker / validator pool / protocol split of every gross, in basis points (sum 10,000).
    function revenueShares() external view returns (RevenueShares memory) {
        LibPayments.Layout storage l = LibPayments.layout();
        return
            RevenueShares({workerBps: l.workerBps, validatorBps: l.validatorBps, protocolBps: l.protocolBps});
    }

    /// @notice Seconds between `requestDepositWithdrawal` and `withdrawDeposit`.
    function depositWithdrawDelay() external view returns (uint64) {
        return LibPayments.layout().depositWithdrawDelay;
    }

    /// @notice Whether `root` was settled, by any gateway.
    /// @param root A batch's Merkle root.
    function isSettled(bytes32 root) external view returns (bool) {
        return LibPayments.layout().batchIdOf[root] != 0;
    }

    /// @inheritdoc IPayments
    function nextReceiptSeq(address gateway) external view returns (uint64) {
        return LibPayments.layout().nextSeq[gateway];
    }

    /// @notice Number of settled batches; ids run from 1 to this.
    function batchCount() external view returns (uint256) {
        return LibPayments.layout().batchCount;
    }

    /// @notice A settled batch (all zero for an unknown id).
    /// @param batchId From 1 to `batchCount()`.
    function getBatch(uint256 batchId) external view returns (Batch memory) {
        return LibPayments.batch(batchId);
    }

    /// @notice Where protocol fees go, set at deployment.
    function treasury() external view returns (address) {
        return LibGrid.layout().treasury;
    }

    /// @notice The AIPG token every amount is in.
    function token() external view returns (address) {
        return address(LibGrid.token());
    }

    // ---------------------------------------------------------------- internal

    /// @dev Books first, then pulls from the caller (checks-effects-interactions; AIPG has no hooks anyway).
    function _deposit(address payer, uint256 amount) private {
        LibGrid.requireNotPaused();
        LibPayments.creditDeposit(payer, msg.sender, amount);
        LibGrid.token().safeTransferFrom(msg.sender, address(this), amount);
    }
}
