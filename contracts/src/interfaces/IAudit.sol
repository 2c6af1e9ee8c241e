// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title Random audits of settled receipts: commit-reveal attestations, verdicts, slashing, rewards.
/// @notice Flow per settled batch: once its randomness source is ready, anyone calls `fixRandomness`
/// (R is fixed only after settlement, so no one could choose which receipts get audited). A receipt of the
/// batch (one the worker signed, naming the batch's gateway, whose `seq` lies in the batch's range) is
/// audited when `uint256(keccak256(abi.encode(R, leaf))) % 10_000 < auditRateBps(worker)`. Its seats are
/// drawn by stake weight from `keccak256(abi.encode(R, leaf, i))` over the validators' stake checkpoints
/// of the block before settlement: nothing anyone does after settlement changes who is assigned.
/// Each assigned validator commits `voteCommitment(leaf, validator, vote, evidenceHash, salt)` before the
/// commit deadline, reveals it before the reveal deadline, and after that anyone `finalize`s:
/// - revealed votes decide: with fewer than `quorum` of them, or a tie, the audit is Inconclusive;
/// - FAIL: the worker's bond is slashed `workerSlashAmount` (capped at what it has), `finderShareBps` of it
///   is credited to the FAIL voters in equal parts and the rest goes to the treasury. PASS: each PASS voter
///   is paid `passReward`, out of what the audited batch itself paid into the validator share;
/// - every validator who revealed against the verdict, or committed and never revealed, is slashed
///   `falseAttestationSlash` (capped) into the validator pool. Assigned validators who never committed
///   earn nothing and lose nothing.
/// Every parameter is bounded by `AuditLimits` fixed at deployment, and a config or source change runs only
/// after the same announced delay as a diamond cut (ICutTimelock).
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

    /// @notice A receipt exactly as the worker signed it (EIP-712 type `Receipt` in packages/core, domain
    /// "AIPG Grid" / "1" / chain id / the diamond).
    struct Receipt {
        bytes32 jobId;
        address gateway; // the gateway that settles it
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
        uint64 seq; // the gateway's receipt number: it belongs to the one batch whose range holds it
    }

    struct AuditConfig {
        uint16 auditRateBps; // default share of receipts audited (10,000 = all)
        uint8 validatorsPerAudit; // k seats per audit
        uint8 quorum; // revealed votes needed for a verdict; more than half the seats
        uint64 commitWindow; // seconds from fixRandomness to the commit deadline
        uint64 revealWindow; // seconds from the commit deadline to the reveal deadline
        uint64 randomnessDelay; // blocks after the settlement block whose randomness is used
        uint256 workerSlashAmount; // AIPG wei taken from a worker's bond on FAIL
        uint256 falseAttestationSlash; // AIPG wei taken from a validator against the verdict or silent after commit
        uint16 finderShareBps; // share of a worker slash credited to the FAIL voters
        uint256 passReward; // AIPG wei to each PASS voter of a PASS audit, from the batch's validator share
    }

    /// @notice Bounds on every AuditConfig, fixed at deployment: no governance can go past them.
    struct AuditLimits {
        uint16 maxWorkerSlashBps; // workerSlashAmount <= workerMinimumBond * this / 10,000
        uint16 maxFalseAttestationSlashBps; // falseAttestationSlash <= validatorMinimumBond * this / 10,000
        uint16 maxFinderShareBps;
        uint8 minValidatorsPerAudit;
        uint8 minQuorum;
        uint64 minCommitWindow;
        uint64 minRevealWindow;
    }

    struct BatchAudit {
        bytes32 randomness; // 0 until fixed
        uint64 fixedAt; // timestamp of fixRandomness
        uint64 deadline; // commits accepted while block.timestamp <= deadline
        uint64 revealDeadline; // reveals accepted after `deadline` while block.timestamp <= revealDeadline
    }

    struct AuditInfo {
        uint256 batchId;
        address worker;
        bytes32 modelId;
        uint64 deadline; // commit deadline
        uint64 revealDeadline;
        uint8 seats; // validators assigned
        uint8 commits;
        uint8 passVotes; // revealed
        uint8 failVotes; // revealed
        Verdict verdict;
        uint256 slashed; // taken from the worker on FAIL
    }

    event AuditRandomnessFixed(uint256 indexed batchId, bytes32 randomness, uint64 deadline);
    event AuditOpened(uint256 indexed batchId, bytes32 indexed leaf, address indexed worker, address[] validators);
    event VoteCommitted(uint256 indexed batchId, bytes32 indexed leaf, address indexed validator, bytes32 commitment);
    /// @notice A revealed vote (the attestation).
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
    event AuditConfigAnnounced(bytes32 indexed id, AuditConfig config, uint64 executableAt, uint64 expiresAt);
    event RandomnessSourceAnnounced(bytes32 indexed id, address source, uint64 executableAt, uint64 expiresAt);
    /// @notice A validator's signed public record that `gateway` served audit evidence for `leaf` (of its batch
    /// `batchId`) that does not hash to what the worker signed (`reason`: a short ASCII code such as
    /// "RECEIPT_REQUEST_HASH", left-aligned and zero-padded; `evidenceHash` commits to the evidence the validator
    /// keeps). Nothing is slashed or paid: a gateway has no bond.
    event GatewayFaultReported(
        address indexed gateway,
        uint256 indexed batchId,
        bytes32 indexed leaf,
        address validator,
        bytes32 reason,
        bytes32 evidenceHash
    );

    error UnknownBatch(uint256 batchId);
    error RandomnessAlreadyFixed(uint256 batchId);
    error RandomnessNotReady(uint256 batchId);
    error RandomnessNotFixed(uint256 batchId);
    error InvalidProof();
    error NotAudited(bytes32 leaf);
    error NotAssigned(address validator, bytes32 leaf);
    error AlreadyCommitted(address validator, bytes32 leaf);
    error NotCommitted(address validator, bytes32 leaf);
    error AlreadyRevealed(address validator, bytes32 leaf);
    error CommitmentMismatch(address validator, bytes32 leaf);
    error CommitWindowClosed(uint64 deadline);
    error RevealWindowNotOpen(uint64 opensAfter);
    error RevealWindowClosed(uint64 deadline);
    error AuditWindowOpen(uint64 revealDeadline);
    error AlreadyFinalized(bytes32 leaf);
    error NothingToFinalize(bytes32 leaf);
    error InvalidVote();
    error InvalidAuditConfig(string reason);
    error RateCanOnlyRise(uint16 current, uint16 requested);
    /// @notice The receipt is not signed by the worker's operator key as of `completedAt` or of its settlement.
    error InvalidReceiptSignature(address worker, address signer);
    /// @notice The receipt names another gateway, or its `seq` is outside the batch's range: it does not
    /// belong to this batch.
    error ReceiptNotInBatch(uint256 batchId, address gateway, uint64 seq);
    /// @notice The caller is neither an active validator bond's owner nor its operator key.
    error NotAnActiveValidator(address validator);
    /// @notice This validator already reported a gateway fault on this leaf.
    error AlreadyReported(address validator, bytes32 leaf);
    /// @notice A gateway fault report needs a non-zero reason code.
    error InvalidFaultReason();

    /// @notice Fixes the batch's randomness from the configured source; reverts until it is ready.
    function fixRandomness(uint256 batchId) external;
    /// @notice Commits the caller's validator's hidden vote on an audited receipt. The first commit opens the
    /// audit: it checks the Merkle proof, that the receipt belongs to the batch (gateway and seq range), the
    /// worker's EIP-712 signature against its operator key as of `completedAt` (or of the batch's settlement),
    /// that the receipt is audited,
    /// and stores the assigned validators. Later commits of the same leaf skip those checks.
    function commitVote(
        uint256 batchId,
        Receipt calldata receipt,
        bytes calldata signature,
        bytes32[] calldata proof,
        bytes32 commitment
    ) external;
    /// @notice Reveals the caller's validator's vote after the commit deadline; it must match its commitment.
    function revealVote(bytes32 leaf, Vote vote, bytes32 evidenceHash, bytes32 salt) external;
    /// @notice Applies the verdict of an audit whose reveal deadline has passed. Anyone may call it, once.
    function finalize(bytes32 leaf) external;
    /// @notice The caller's active validator (its operator key or the owner) reports, once per leaf, that the
    /// batch's gateway served audit evidence for `leaf` that does not hash to what the worker signed: the
    /// validator abstains from that audit and leaves this public record instead. Only during the batch's audit
    /// period (its randomness fixed, its commit window open) and only for a leaf of the batch (Merkle proof).
    /// Emits `GatewayFaultReported`; moves no funds.
    function reportGatewayFault(
        uint256 batchId,
        bytes32 leaf,
        bytes32[] calldata proof,
        bytes32 reason,
        bytes32 evidenceHash
    ) external;

    /// @notice Owner: raise one worker's audit rate above the default (never lower it). More audits never
    /// cost an honest worker anything, so it needs no delay.
    function setWorkerAuditRate(address worker, uint16 rateBps) external;
    /// @notice Owner: announces an audit config (within `auditLimits`); it can be applied after `cutDelay`.
    function announceAuditConfig(AuditConfig calldata config) external returns (bytes32 id);
    /// @notice Owner: applies an announced, matured, unexpired config to batches fixed from now on.
    function setAuditConfig(AuditConfig calldata config) external;
    /// @notice Owner: announces a randomness source; it can be applied after `cutDelay`.
    function announceRandomnessSource(address source) external returns (bytes32 id);
    /// @notice Owner: applies an announced, matured, unexpired randomness source.
    function setRandomnessSource(address source) external;

    /// @notice `keccak256(abi.encode(leaf, validator, vote, evidenceHash, salt))`: what `commitVote` takes.
    /// `validator` is the bond owner, so one validator's commitment is worthless to another.
    function voteCommitment(bytes32 leaf, address validator, Vote vote, bytes32 evidenceHash, bytes32 salt)
        external
        pure
        returns (bytes32);
    function receiptLeaf(Receipt calldata receipt) external pure returns (bytes32);
    /// @notice The EIP-712 digest the worker signs for `receipt`.
    function receiptDigest(Receipt calldata receipt) external view returns (bytes32);
    function hashAuditConfig(AuditConfig calldata config) external pure returns (bytes32);
    function hashRandomnessSource(address source) external pure returns (bytes32);
    function batchAudit(uint256 batchId) external view returns (BatchAudit memory);
    /// @notice Whether `leaf` (of batch `batchId`) is audited; false until the randomness is fixed.
    function isAudited(uint256 batchId, bytes32 leaf, address worker) external view returns (bool);
    /// @notice The validators (owners) assigned to audit `leaf`; empty until the randomness is fixed. A
    /// pure function of R and the stake checkpoints of the block before settlement: it never changes.
    function assignedValidators(uint256 batchId, bytes32 leaf) external view returns (address[] memory);
    function getAudit(bytes32 leaf) external view returns (AuditInfo memory);
    /// @notice Whether `validator` committed on `leaf`, and its revealed vote (None until revealed).
    function voteOf(bytes32 leaf, address validator) external view returns (bool committed, Vote vote);
    /// @notice Whether `validator` (a bond owner) reported a gateway fault on `leaf`.
    function faultReported(bytes32 leaf, address validator) external view returns (bool);
    function auditConfig() external view returns (AuditConfig memory);
    function auditLimits() external view returns (AuditLimits memory);
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
