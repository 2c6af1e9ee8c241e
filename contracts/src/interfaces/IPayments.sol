// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ICommon} from "./ICommon.sol";

/// @title Escrow and settlement. Payers deposit and approve gateways up to a cap; a gateway settles
/// batches of signed receipts (their Merkle root) with per-payer debits and per-worker gross amounts.
/// Each worker's gross is split into worker / validator pool / protocol shares fixed at deployment.
interface IPayments is ICommon {
    struct PayerDebit {
        address payer;
        uint256 amount;
    }

    struct WorkerCredit {
        address worker; // the worker's bond owner (receipts name the owner; the operator key signs)
        uint256 gross;
    }

    struct DepositInfo {
        uint256 balance; // includes `withdrawRequested` until it is withdrawn: gateways can still settle against it
        uint256 withdrawRequested;
        uint64 withdrawReadyAt;
    }

    struct Batch {
        bytes32 root;
        address gateway;
        uint32 receiptCount;
        uint64 settledAt; // block.timestamp
        uint64 settledBlock; // block.number, for audit randomness drawn from a later block
        uint256 total;
        uint64 firstSeq; // the batch holds the gateway's receipts firstSeq .. firstSeq + receiptCount - 1
        uint256 rewardLeft; // what the batch paid into the validator share and audits have not paid out yet
    }

    struct RevenueShares {
        uint16 workerBps;
        uint16 validatorBps;
        uint16 protocolBps;
    }

    event Deposited(address indexed payer, address indexed from, uint256 amount);
    /// @notice `payer`'s cap for `gateway` is now `cap` (after an increase, a decrease or a settlement).
    event GatewayApproved(address indexed payer, address indexed gateway, uint256 cap);
    event DepositWithdrawalRequested(address indexed payer, uint256 amount, uint64 readyAt);
    event DepositWithdrawn(address indexed payer, uint256 amount);
    event BatchSettled(
        uint256 indexed batchId,
        address indexed gateway,
        bytes32 indexed root,
        uint32 receiptCount,
        uint256 total,
        uint64 firstSeq
    );
    event PayerDebited(uint256 indexed batchId, address indexed payer, uint256 amount);
    event WorkerCredited(uint256 indexed batchId, address indexed worker, uint256 gross, uint256 net);
    event EarningsWithdrawn(address indexed account, uint256 amount);
    event ProtocolFeesWithdrawn(address indexed treasury, uint256 amount);

    error InsufficientDeposit(address payer, uint256 requested, uint256 available);
    error GatewayCapExceeded(address payer, address gateway, uint256 requested, uint256 cap);
    error NothingToWithdraw();
    error WithdrawalNotReady(uint64 readyAt, uint64 nowTs);
    error BatchAlreadySettled(bytes32 root);
    error EmptyBatch();
    error SumMismatch(uint256 debits, uint256 credits);
    error UnknownWorker(address worker);
    error ZeroRoot();
    /// @notice A batch must start at the gateway's next receipt number: receipts are settled once, in order.
    error SequenceMismatch(address gateway, uint64 expected, uint64 firstSeq);

    function deposit(uint256 amount) external;
    function depositFor(address payer, uint256 amount) external;
    /// @notice Deposit using an ERC-2612 permit on the AIPG token instead of a prior approve.
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;
    /// @notice Raises what `gateway` may debit from the caller's deposit by `amount` (saturating at
    /// type(uint256).max, which is unlimited). Settlements lower it.
    function increaseGatewayCap(address gateway, uint256 amount) external;
    /// @notice Lowers what `gateway` may debit by `amount` (saturating at 0): a settlement that front-runs
    /// it can never leave the gateway more than the payer meant (no approve race).
    function decreaseGatewayCap(address gateway, uint256 amount) external;
    function requestDepositWithdrawal(uint256 amount) external;
    /// @notice Withdraws min(requested, balance) once the delay has passed. Works while paused.
    function withdrawDeposit() external;

    /// @notice Settles one batch as `msg.sender` (the gateway): its receipts numbered `firstSeq` ..
    /// `firstSeq + receiptCount - 1`, where `firstSeq` must be `nextReceiptSeq(msg.sender)`. Sum of debits must
    /// equal sum of credits, and be positive.
    function settle(
        bytes32 root,
        uint64 firstSeq,
        uint32 receiptCount,
        PayerDebit[] calldata debits,
        WorkerCredit[] calldata credits
    ) external returns (uint256 batchId);
    /// @notice Sends the caller's own earnings to the caller. Works while paused.
    function withdrawEarnings() external;
    /// @notice Sends accrued protocol fees to the treasury set at deployment (callable by anyone).
    function withdrawProtocolFees() external;

    function depositOf(address payer) external view returns (DepositInfo memory);
    function gatewayAllowance(address payer, address gateway) external view returns (uint256);
    function earningsOf(address account) external view returns (uint256);
    function validatorPool() external view returns (uint256);
    function protocolFees() external view returns (uint256);
    function revenueShares() external view returns (RevenueShares memory);
    function depositWithdrawDelay() external view returns (uint64);
    function isSettled(bytes32 root) external view returns (bool);
    /// @notice The receipt number `gateway`'s next batch must start at (0 before its first batch).
    function nextReceiptSeq(address gateway) external view returns (uint64);
    function batchCount() external view returns (uint256);
    function getBatch(uint256 batchId) external view returns (Batch memory);
    function treasury() external view returns (address);
    function token() external view returns (address);
}
