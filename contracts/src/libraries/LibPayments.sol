// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ICommon} from "../interfaces/ICommon.sol";
import {IPayments} from "../interfaces/IPayments.sol";
import {IBonding} from "../interfaces/IBonding.sol";
import {IGridInit} from "../interfaces/IGridInit.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {LibBonding} from "./LibBonding.sol";

/// @title Escrow and settlement: storage and bookkeeping (ERC-7201 `aipg.storage.Payments`).
/// @dev Pure accounting, no token transfers: the facet moves tokens after the books are updated. Every
/// amount here is AIPG held by the diamond, so the sum of deposits, earnings and both pools only changes
/// together with a token transfer in or out (see the invariant tests).
library LibPayments {
    uint256 internal constant BPS = 10_000;

    /// @dev One payer's escrow. `balance` still counts `withdrawRequested` until it is withdrawn, so a
    /// gateway can settle receipts against it during the whole withdrawal delay. The request and its time
    /// share a slot (a request is at most the balance, far below 2^192).
    struct Deposit {
        uint256 balance;
        uint192 withdrawRequested;
        uint64 withdrawReadyAt;
    }

    /// @dev A settled batch in four slots: `total` and `rewardLeft` are at most the token's supply, far below
    /// 2^192, and settle checks it anyway.
    struct StoredBatch {
        bytes32 root;
        address gateway;
        uint32 receiptCount;
        uint64 settledAt;
        uint64 settledBlock;
        uint192 total;
        uint64 firstSeq;
        uint192 rewardLeft; // the batch's validator share not yet paid out as audit rewards
    }

    /// @custom:storage-location erc7201:aipg.storage.Payments
    /// @dev Append-only: add new fields at the end.
    struct Layout {
        mapping(address payer => Deposit) deposits;
        mapping(address payer => mapping(address gateway => uint256 cap)) gatewayCaps;
        mapping(address account => uint256) earnings;
        uint256 validatorPool;
        uint256 protocolFees;
        // one slot: settle reads the three shares with a single SLOAD
        uint16 workerBps;
        uint16 validatorBps;
        uint16 protocolBps;
        uint64 depositWithdrawDelay;
        uint256 batchCount;
        mapping(uint256 batchId => StoredBatch) batches;
        mapping(bytes32 root => uint256 batchId) batchIdOf;
        // Each gateway's next receipt number: batch n of a gateway covers [nextSeq before, nextSeq after).
        mapping(address gateway => uint64) nextSeq;
    }

    // keccak256(abi.encode(uint256(keccak256("aipg.storage.Payments")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant STORAGE_SLOT =
        0x00208f38139c9dd643e32d96744b587328f3a7a7ab1fdb2fa28317bc0cc58700;

    function layout() internal pure returns (Layout storage l) {
        bytes32 slot = STORAGE_SLOT;
        assembly {
            l.slot := slot
        }
    }

    /// @dev Called once by DiamondInit. The shares are fixed for the diamond's lifetime.
    function initialize(
        uint64 depositWithdrawDelay,
        uint16 workerBps,
        uint16 validatorBps,
        uint16 protocolBps
    ) internal {
        Layout storage l = layout();
        if (uint256(l.workerBps) + l.validatorBps + l.protocolBps != 0) {
            revert IGridInit.InvalidInit("payments already initialized");
        }
        if (uint256(workerBps) + validatorBps + protocolBps != BPS) revert IGridInit.InvalidInit("shares");
        if (depositWithdrawDelay == 0) revert IGridInit.InvalidInit("depositWithdrawDelay");
        l.workerBps = workerBps;
        l.validatorBps = validatorBps;
        l.protocolBps = protocolBps;
        l.depositWithdrawDelay = depositWithdrawDelay;
    }

    // ---------------------------------------------------------------- escrow

    /// @dev Credits `amount` to `payer`'s escrow; the caller must then pull the tokens from `from`.
    function creditDeposit(address payer, address from, uint256 amount) internal {
        if (payer == address(0)) revert ICommon.ZeroAddress();
        if (amount == 0) revert ICommon.ZeroAmount();
        layout().deposits[payer].balance += amount;
        emit IPayments.Deposited(payer, from, amount);
    }

    /// @dev Raises the cap by `amount`, saturating at type(uint256).max (unlimited).
    function increaseGatewayCap(address payer, address gateway, uint256 amount) internal {
        if (gateway == address(0)) revert ICommon.ZeroAddress();
        mapping(address => uint256) storage caps = layout().gatewayCaps[payer];
        uint256 cap = caps[gateway];
        unchecked {
            // Saturating add: on overflow the cap is unlimited.
            cap = amount > type(uint256).max - cap ? type(uint256).max : cap + amount;
        }
        caps[gateway] = cap;
        emit IPayments.GatewayApproved(payer, gateway, cap);
    }

    /// @dev Lowers the cap by `amount`, saturating at 0. Relative, so a settlement landing first can only
    /// leave less, never more, than the payer meant: the ERC-20 approve race does not exist here.
    function decreaseGatewayCap(address payer, address gateway, uint256 amount) internal {
        if (gateway == address(0)) revert ICommon.ZeroAddress();
        mapping(address => uint256) storage caps = layout().gatewayCaps[payer];
        uint256 cap = caps[gateway];
        unchecked {
            // Saturating subtraction.
            cap = amount >= cap ? 0 : cap - amount;
        }
        caps[gateway] = cap;
        emit IPayments.GatewayApproved(payer, gateway, cap);
    }

    /// @dev Replaces any earlier request and restarts the delay. Nothing leaves the balance yet.
    function requestWithdrawal(address payer, uint256 amount) internal returns (uint64 readyAt) {
        if (amount == 0) revert ICommon.ZeroAmount();
        Layout storage l = layout();
        Deposit storage d = l.deposits[payer];
        uint256 balance = d.balance;
        if (amount > balance) revert IPayments.InsufficientDeposit(payer, amount, balance);
        readyAt = uint64(block.timestamp) + l.depositWithdrawDelay;
        d.withdrawRequested = SafeCast.toUint192(amount);
        d.withdrawReadyAt = readyAt;
        emit IPayments.DepositWithdrawalRequested(payer, amount, readyAt);
    }

    /// @dev Closes `payer`'s ready request and takes min(requested, balance) off the balance: settlements
    /// during the delay may have spent part of what was requested. Returns what the caller must send.
    function takeWithdrawal(address payer) internal returns (uint256 amount) {
        Deposit storage d = layout().deposits[payer];
        uint256 requested = d.withdrawRequested;
        if (requested == 0) revert IPayments.NothingToWithdraw();
        uint64 readyAt = d.withdrawReadyAt;
        // forge-lint: disable-next-line(block-timestamp) the delay is days long; seconds of skew do not matter
        if (block.timestamp < readyAt) revert IPayments.WithdrawalNotReady(readyAt, uint64(block.timestamp));
        uint256 balance = d.balance;
        amount = requested < balance ? requested : balance;
        unchecked {
            // amount <= balance
            d.balance = balance - amount;
        }
        d.withdrawRequested = 0;
        d.withdrawReadyAt = 0;
        emit IPayments.DepositWithdrawn(payer, amount);
    }

    // ---------------------------------------------------------------- settlement

    /// @dev Books one batch for `gateway`: its receipts numbered [firstSeq, firstSeq + receiptCount), which
    /// must follow the gateway's previous batch exactly (one batch per receipt number, O(1) per batch);
    /// debits payers within their deposits and this gateway's caps, credits each worker's share of its gross,
    /// accrues the validator and protocol shares. A batch must pay something: one that pays nothing could
    /// only serve to open audits and farm rewards.
    function settle(
        address gateway,
        bytes32 root,
        uint64 firstSeq,
        uint32 receiptCount,
        IPayments.PayerDebit[] calldata debits,
        IPayments.WorkerCredit[] calldata credits
    ) internal returns (uint256 batchId) {
        if (root == bytes32(0)) revert IPayments.ZeroRoot();
        Layout storage l = layout();
        if (l.batchIdOf[root] != 0) revert IPayments.BatchAlreadySettled(root);
        if (receiptCount == 0 || debits.length == 0 || credits.length == 0) revert IPayments.EmptyBatch();
        _claimRange(l, gateway, firstSeq, receiptCount);

        unchecked {
            // Cannot overflow: a counter incremented by one per settlement.
            batchId = ++l.batchCount;
        }
        l.batchIdOf[root] = batchId;

        uint256 debitTotal = _debitPayers(l, gateway, batchId, debits);
        (uint256 creditTotal, uint256 validatorShare) = _creditWorkers(l, batchId, credits);
        if (debitTotal != creditTotal) revert IPayments.SumMismatch(debitTotal, creditTotal);
        if (creditTotal == 0) revert IPayments.EmptyBatch();

        _record(batchId, gateway, root, firstSeq, receiptCount, creditTotal, validatorShare);
    }

    function _record(
        uint256 batchId,
        address gateway,
        bytes32 root,
        uint64 firstSeq,
        uint32 receiptCount,
        uint256 total,
        uint256 validatorShare
    ) private {
        layout().batches[batchId] = StoredBatch({
            root: root,
            gateway: gateway,
            receiptCount: receiptCount,
            settledAt: uint64(block.timestamp),
            settledBlock: uint64(block.number),
            total: SafeCast.toUint192(total),
            firstSeq: firstSeq,
            // validatorShare <= total, which fits 192 bits (checked just above)
            rewardLeft: uint192(validatorShare)
        });
        emit IPayments.BatchSettled(batchId, gateway, root, receiptCount, total, firstSeq);
    }

    /// @dev The batch must start at `gateway`'s next receipt number; the next one starts right after it.
    function _claimRange(Layout storage l, address gateway, uint64 firstSeq, uint32 receiptCount) private {
        uint64 expected = l.nextSeq[gateway];
        if (firstSeq != expected) revert IPayments.SequenceMismatch(gateway, expected, firstSeq);
        // Checked: a gateway cannot wrap its numbering around to reuse receipt numbers.
        l.nextSeq[gateway] = firstSeq + receiptCount;
    }

    /// @dev Takes each debit off the payer's balance and off its cap for `gateway`. Returns their sum.
    function _debitPayers(
        Layout storage l,
        address gateway,
        uint256 batchId,
        IPayments.PayerDebit[] calldata debits
    ) private returns (uint256 total) {
        uint256 n = debits.length;
        // `++i` below is bounded by a calldata length (solc >= 0.8.22 drops its overflow check by itself).
        for (uint256 i; i < n; ++i) {
            address payer = debits[i].payer;
            uint256 amount = debits[i].amount;
            mapping(address => uint256) storage caps = l.gatewayCaps[payer];
            uint256 cap = caps[gateway];
            if (amount > cap) revert IPayments.GatewayCapExceeded(payer, gateway, amount, cap);
            Deposit storage d = l.deposits[payer];
            uint256 balance = d.balance;
            if (amount > balance) revert IPayments.InsufficientDeposit(payer, amount, balance);
            unchecked {
                // amount <= cap and amount <= balance are checked just above. `total` never exceeds the sum of
                // the balances held by the diamond (a payer listed twice is debited twice), so it is bounded
                // by the token's total supply.
                // A cap of type(uint256).max is unlimited (as ERC-20 allowances): saves an SSTORE per payer.
                if (cap != type(uint256).max) caps[gateway] = cap - amount;
                d.balance = balance - amount;
                total += amount;
            }
            emit IPayments.PayerDebited(batchId, payer, amount);
        }
    }

    /// @dev Credits each worker's share and accrues the validator pool and protocol shares. Returns the
    /// sum of the gross amounts and the validator share of it.
    function _creditWorkers(Layout storage l, uint256 batchId, IPayments.WorkerCredit[] calldata credits)
        private
        returns (uint256 total, uint256 validatorTotal)
    {
        // Both shares live in one slot (one cold SLOAD); the protocol's share is the remainder.
        uint256 workerBps = l.workerBps;
        uint256 validatorBps = l.validatorBps;
        uint256 workerTotal;
        mapping(address => LibBonding.Bond) storage workerBonds =
            LibBonding.layout(IBonding.Role.Worker).bonds;
        uint256 n = credits.length;
        // `++i` below is bounded by a calldata length (solc >= 0.8.22 drops its overflow check by itself).
        for (uint256 i; i < n; ++i) {
            address worker = credits[i].worker;
            uint256 gross = credits[i].gross;
            {
                // Same test as `LibBonding.bondedAmount(Worker, worker) == 0`, short-circuited: an active
                // worker costs one cold SLOAD instead of two.
                LibBonding.Bond storage b = workerBonds[worker];
                if (b.amount == 0 && b.unbonding == 0) revert IPayments.UnknownWorker(worker);
            }
            // Checked on purpose: `gross` is caller input, bounded only by the sum check in `settle`.
            total += gross;
            uint256 net = gross * workerBps / BPS;
            {
                uint256 toValidators = gross * validatorBps / BPS;
                unchecked {
                    // net <= gross and toValidators <= gross (each bps <= 10_000), so both running totals
                    // stay <= total, whose addition is checked above.
                    workerTotal += net;
                    validatorTotal += toValidators;
                }
            }
            l.earnings[worker] += net;
            emit IPayments.WorkerCredited(batchId, worker, gross, net);
        }
        uint256 protocolTotal;
        unchecked {
            // floor(g * w / B) + floor(g * v / B) <= g * (w + v) / B <= g for every gross g, as
            // w + v <= B: the protocol's remainder is never negative and no wei is lost to rounding.
            protocolTotal = total - workerTotal - validatorTotal;
        }
        l.validatorPool += validatorTotal;
        l.protocolFees += protocolTotal;
    }

    /// @dev A settled batch in the interface's shape (all zero for an unknown id).
    function batch(uint256 batchId) internal view returns (IPayments.Batch memory) {
        StoredBatch storage b = layout().batches[batchId];
        return IPayments.Batch({
            root: b.root,
            gateway: b.gateway,
            receiptCount: b.receiptCount,
            settledAt: b.settledAt,
            settledBlock: b.settledBlock,
            total: b.total,
            firstSeq: b.firstSeq,
            rewardLeft: b.rewardLeft
        });
    }

    // ---------------------------------------------------------------- earnings and pools

    /// @dev Credits earnings that only `account` can withdraw. The amount must already be held by the
    /// diamond and removed from some other bucket (a pool, a slashed bond) by the caller.
    function creditEarnings(address account, uint256 amount) internal {
        layout().earnings[account] += amount;
    }

    /// @dev Zeroes `account`'s earnings and returns what the caller must send to it.
    function takeEarnings(address account) internal returns (uint256 amount) {
        Layout storage l = layout();
        amount = l.earnings[account];
        if (amount == 0) revert IPayments.NothingToWithdraw();
        l.earnings[account] = 0;
        emit IPayments.EarningsWithdrawn(account, amount);
    }

    /// @dev Adds tokens the diamond already holds (for example part of a slashed bond) to the validator pool.
    function addToValidatorPool(uint256 amount) internal {
        layout().validatorPool += amount;
    }

    /// @dev Pays `account` up to `amount` out of what batch `batchId` paid into the validator pool and has
    /// not paid out yet (and never more than the pool holds). Returns the amount paid. Rewards can therefore
    /// never exceed what the audited receipts' batch paid for: nobody can farm the pool.
    function payBatchReward(uint256 batchId, address account, uint256 amount) internal returns (uint256 paid) {
        Layout storage l = layout();
        StoredBatch storage b = l.batches[batchId];
        uint256 left = b.rewardLeft;
        uint256 pool = l.validatorPool;
        paid = amount < left ? amount : left;
        if (paid > pool) paid = pool;
        unchecked {
            // paid <= left and paid <= pool
            b.rewardLeft = uint192(left - paid);
            l.validatorPool = pool - paid;
        }
        l.earnings[account] += paid;
    }

    /// @dev Zeroes the protocol fees and returns what the caller must send to the treasury.
    function takeProtocolFees(address treasury) internal returns (uint256 amount) {
        Layout storage l = layout();
        amount = l.protocolFees;
        if (amount == 0) revert IPayments.NothingToWithdraw();
        l.protocolFees = 0;
        emit IPayments.ProtocolFeesWithdrawn(treasury, amount);
    }
}
