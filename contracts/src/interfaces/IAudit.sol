// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title Random audits of settled receipts: attestations, verdicts, slashing and validator rewards.
/// @notice Flow per settled batch: once its randomness source is ready, anyone calls `fixRandomness`
/// (R is fixed only after settlement, so no one could choose which receipts get audited). A receipt
/// (leaf) is audited when `uint256(keccak256(abi.encode(R, leaf))) % 10_000 < auditRateBps(worker)`
/// (the worker's rate at fixing time). Its `validatorsPerAudit` validators are drawn by stake weight
/// from `keccak256(abi.encode(R, leaf, i))`. Each assigned validator (through its operator key)
/// `attest`s PASS or FAIL with an evidence hash before the deadline; after it anyone `finalize`s:
/// - with fewer than `quorum` votes, or a tie, the audit is Inconclusive: no one is paid or slashed;
/// - otherwise the majority is the verdict. FAIL: the worker's bond is slashed by `workerSlashAmount`
///   (capped at what it has), `finderShareBps` of it is credited as earnings to the FAIL voters in
///   equal parts and the rest goes to the treasury (protocol fees). PASS: each PASS voter is paid
///   `passReward` from the validator pool (as far as the pool goes).
/// - every validator who voted against the verdict is slashed `falseAttestationSlash` (capped),
///   which goes to the validator pool. Silent validators earn nothing and lose nothing.
/// @dev Leaves are OpenZeppelin standard-tree leaves of receipts (see `Receipt`), the same leaves the
/// batch's Merkle root commits to: `keccak256(bytes.concat(keccak256(abi.encode(receipt fields))))`.
interface IAudit {
    enum Vote {
        None,
        Pass,
        Fail
    }

    enum Verdict {
        None, // not finalized
        Pass,
        Fail,
        Inconclusive
    }

    /// @notice A receipt exactly as the worker signed it (EIP-712 type in packages/core).
    struct Receipt {
        bytes32 jobId;
        address gateway;
        address payer;
        address worker; // bond owner
        bytes32 modelId;
        bytes32 requestHash;
        bytes32 outputHash;
        uint64 inputUnits;
        uint64 outputUnits;
        uint256 fee;
        uint64 completedAt;
        bool confidential;
    }

    struct AuditConfig {
        uint16 auditRateBps; // default share of receipts audited (10,000 = all)
        uint8 validatorsPerAudit; // k
        uint8 quorum; // votes needed for a verdict (1..k)
        uint64 attestWindow; // seconds from fixRandomness to the attestation deadline
        uint64 randomnessDelay; // blocks after the settlement block whose randomness is used
        uint256 workerSlashAmount; // AIPG wei taken from a worker's bond on FAIL
        uint256 falseAttestationSlash; // AIPG wei taken from a validator who voted against the verdict
        uint16 finderShareBps; // share of a worker slash credited to the FAIL voters
        uint256 passReward; // AIPG wei paid from the validator pool to each PASS voter of a PASS audit
    }

    struct BatchAudit {
        bytes32 randomness; // 0 until fixed
        uint64 fixedAt; // timestamp of fixRandomness
        uint64 deadline; // attestations accepted while block.timestamp <= deadline
    }

    struct AuditInfo {
        uint256 batchId;
        address worker;
        bytes32 modelId;
        uint64 deadline;
        uint8 passVotes;
        uint8 failVotes;
        Verdict verdict;
        uint256 slashed; // taken from the worker on FAIL
    }

    event AuditRandomnessFixed(uint256 indexed batchId, bytes32 randomness, uint64 deadline);
    event Attested(
        uint256 indexed batchId,
        bytes32 indexed leaf,
        address indexed validator,
        Vote vote,
        bytes32 evidenceHash
    );
    event AuditFinalized(
        uint256 indexed batchId,
        bytes32 indexed leaf,
        address indexed worker,
        Verdict verdict,
        uint256 slashed
    );
    event ValidatorRewarded(bytes32 indexed leaf, address indexed validator, uint256 amount);
    event FalseAttestationSlashed(bytes32 indexed leaf, address indexed validator, uint256 amount);
    event WorkerAuditRateSet(address indexed worker, uint16 rateBps);
    event AuditConfigUpdated(AuditConfig config);
    event RandomnessSourceSet(address source);

    error UnknownBatch(uint256 batchId);
    error RandomnessAlreadyFixed(uint256 batchId);
    error RandomnessNotReady(uint256 batchId);
    error RandomnessNotFixed(uint256 batchId);
    error InvalidProof();
    error NotAudited(bytes32 leaf);
    error NotAssigned(address validator, bytes32 leaf);
    error AlreadyAttested(address validator, bytes32 leaf);
    error AttestWindowClosed(uint64 deadline);
    error AttestWindowOpen(uint64 deadline);
    error AlreadyFinalized(bytes32 leaf);
    error NothingToFinalize(bytes32 leaf);
    error InvalidVote();
    error InvalidAuditConfig(string reason);
    error RateCanOnlyRise(uint16 current, uint16 requested);
    /// @notice The leaf's audit was opened under another batch (the same receipt settled twice): attest
    /// under `batchId`, the batch its first attestation named.
    error AuditedInOtherBatch(bytes32 leaf, uint256 batchId);

    /// @notice Fixes the batch's randomness from the configured source; reverts until it is ready.
    function fixRandomness(uint256 batchId) external;
    /// @notice Attests as the caller's validator (the caller is the validator's operator key or owner).
    /// @dev Confidential receipts are never audited (DESIGN §6: their TEE attestation covers them):
    /// `attest` rejects them with `NotAudited`.
    function attest(
        uint256 batchId,
        Receipt calldata receipt,
        bytes32[] calldata proof,
        Vote vote,
        bytes32 evidenceHash
    ) external;
    /// @notice Applies the verdict of an audit whose deadline has passed. Anyone may call it, once.
    function finalize(bytes32 leaf) external;

    /// @notice Owner: raise one worker's audit rate above the default (never lower it).
    function setWorkerAuditRate(address worker, uint16 rateBps) external;
    /// @notice Owner: governance of the audit parameters.
    /// @dev A batch keeps the config in force when its randomness was fixed (rate, k, quorum, window,
    /// slashes, shares, reward): a change applies to batches fixed afterwards, never to open audits.
    function setAuditConfig(AuditConfig calldata config) external;
    /// @notice Owner: the randomness source (future block hash on a devnet, a VRF adapter on Base).
    function setRandomnessSource(address source) external;

    function receiptLeaf(Receipt calldata receipt) external pure returns (bytes32);
    function batchAudit(uint256 batchId) external view returns (BatchAudit memory);
    /// @notice Whether `leaf` (of batch `batchId`) is audited; false until the randomness is fixed.
    /// @dev A leaf does not say whether its receipt is confidential: `attest` also refuses those.
    function isAudited(uint256 batchId, bytes32 leaf, address worker) external view returns (bool);
    /// @notice The validators (owners) assigned to audit `leaf`; empty until the randomness is fixed.
    function assignedValidators(uint256 batchId, bytes32 leaf) external view returns (address[] memory);
    function getAudit(bytes32 leaf) external view returns (AuditInfo memory);
    function voteOf(bytes32 leaf, address validator) external view returns (Vote);
    function auditConfig() external view returns (AuditConfig memory);
    function workerAuditRate(address worker) external view returns (uint16);
    function randomnessSource() external view returns (address);
}

/// @title Where audit randomness comes from. A devnet uses a future block's hash; Base needs a source
/// no one knows in advance (a VRF adapter), since Base's `prevrandao` is known to the sequencer.
interface IRandomnessSource {
    /// @notice The randomness for a batch settled at `settledBlock`; `ready` false until it exists.
    /// @param delay The audit config's `randomnessDelay` (blocks after `settledBlock`), passed in so the
    /// delay has one source of truth; a source with its own schedule (a VRF) may ignore it.
    function randomness(uint256 batchId, uint64 settledBlock, uint64 delay)
        external
        view
        returns (bool ready, bytes32 value);
}
