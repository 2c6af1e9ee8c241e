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
    }

    struct RevenueShares {
        uint16 workerBps;
        uint16 validatorBps;
        uint16 protocolBps;
    }

    event Deposited(address indexed payer, address indexed from, uint256 amount);
    event GatewayApproved(address indexed payer, address indexed gateway, uint256 cap);
    event DepositWithdrawalRequested(address indexed payer, uint256 amount, uint64 readyAt);
    event DepositWithdrawn(address indexed payer, uint256 amount);
    event BatchSettled(
        uint256 indexed batchId, address indexed gateway, bytes32 indexed root, uint32 receiptCount, uint256 total
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

    function deposit(uint256 amount) external;
    function depositFor(address payer, uint256 amount) external;
    /// @notice Deposit using an ERC-2612 permit on the AIPG token instead of a prior approve.
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;
    /// @notice Lets `gateway` debit the caller's deposit up to `cap` in total (settles reduce it).
    function approveGateway(address gateway, uint256 cap) external;
    function requestDepositWithdrawal(uint256 amount) external;
    /// @notice Withdraws min(requested, balance) once the delay has passed. Works while paused.
    function withdrawDeposit() external;

    /// @notice Settles one batch as `msg.sender` (the gateway). Sum of debits must equal sum of credits.
    function settle(bytes32 root, uint32 receiptCount, PayerDebit[] calldata debits, WorkerCredit[] calldata credits)
        external
        returns (uint256 batchId);
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
    function batchCount() external view returns (uint256);
    function getBatch(uint256 batchId) external view returns (Batch memory);
    function treasury() external view returns (address);
    function token() external view returns (address);
}
