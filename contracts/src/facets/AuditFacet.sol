// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ICommon} from "../interfaces/ICommon.sol";
import {IAudit} from "../interfaces/IAudit.sol";
import {LibAudit} from "../libraries/LibAudit.sol";
import {LibDiamond} from "../libraries/LibDiamond.sol";

/// @title Random audits of settled receipts: randomness, attestations, verdicts and slashing.
/// @notice A thin facet over LibAudit; see IAudit for the whole flow.
/// @dev None of these selectors is immutable, on purpose. An audit never locks anything: a bond under audit
/// can still be unbonded and withdrawn (it stays slashable while unbonding), earnings credited by a verdict
/// are withdrawn through `withdrawEarnings`, so removing or replacing any function here cannot trap a stake
/// or a reward; every exit lives on the immutable bonding and payments selectors. And this is the one code
/// path that takes stakes against their owners' will, so it must stay fixable, like any upgrade only after
/// the announced cut delay (longer than every exit delay: whoever dislikes a new audit rule leaves first).
/// If a future change lets a pending audit block an exit, its release path must become immutable with it.
/// Audits keep running while the grid is paused: pause stops new money and work coming in, and must not let
/// anyone hold off a verdict while the accused worker withdraws.
contract AuditFacet is IAudit {
    // ---------------------------------------------------------------- audits

    /// @inheritdoc IAudit
    /// @dev Anyone may call it once the source is ready: `block.number > settledBlock + randomnessDelay` on a
    /// devnet. Starts the commit window (`commitWindow` seconds, then `revealWindow` for reveals) and freezes
    /// the batch's audit parameters (the config in force and every worker's own rate as they are now).
    /// Reverts `UnknownBatch`, `RandomnessAlreadyFixed` or `RandomnessNotReady`.
    /// @param batchId A settled batch.
    function fixRandomness(uint256 batchId) external {
        LibAudit.fixRandomness(batchId);
    }

    /// @inheritdoc IAudit
    /// @dev Opening reverts, in this order: `UnknownBatch`, `RandomnessNotFixed`, `CommitWindowClosed`,
    /// `InvalidProof` (not a leaf of the batch's root), `ReceiptNotInBatch` (another gateway, or `seq` outside
    /// the batch's range), `NotAudited` (not drawn), `InvalidReceiptSignature`. Then, as for
    /// every commit: `NotAssigned` (the caller's validator holds no seat), `AlreadyCommitted`. `InvalidVote`
    /// for a zero commitment.
    /// @param batchId The batch whose root `proof` leads to.
    /// @param receipt The audited receipt, exactly as signed.
    /// @param signature The worker's EIP-712 signature of `receipt` (65 bytes).
    /// @param proof Merkle proof of `receiptLeaf(receipt)` against the batch's root.
    /// @param commitment `voteCommitment(leaf, validator, vote, evidenceHash, salt)`.
    function commitVote(
        uint256 batchId,
        Receipt calldata receipt,
        bytes calldata signature,
        bytes32[] calldata proof,
        bytes32 commitment
    ) external {
        LibAudit.commitVote(msg.sender, batchId, receipt, signature, proof, commitment);
    }

    /// @inheritdoc IAudit
    /// @dev Reverts `NotCommitted`, `RevealWindowNotOpen` (the commit window is still open),
    /// `RevealWindowClosed`, `InvalidVote`, `NotAssigned`, `AlreadyRevealed` or `CommitmentMismatch`.
    /// @param leaf `receiptLeaf` of the audited receipt.
    /// @param vote Pass or Fail.
    /// @param evidenceHash Commitment to the validator's evidence (the re-scoring report), for disputes and
    /// the dashboard; not interpreted on chain.
    /// @param salt The secret the commitment was made with.
    function revealVote(bytes32 leaf, Vote vote, bytes32 evidenceHash, bytes32 salt) external {
        LibAudit.revealVote(msg.sender, leaf, vote, evidenceHash, salt);
    }

    /// @inheritdoc IAudit
    /// @dev Reverts `NothingToFinalize` (nobody committed), `AlreadyFinalized` or `AuditWindowOpen`. Makes no
    /// external call: slashes, rewards and fees are internal books of AIPG the diamond already holds.
    /// @param leaf `receiptLeaf` of the audited receipt.
    function finalize(bytes32 leaf) external {
        LibAudit.finalize(leaf);
    }

    /// @inheritdoc IAudit
    /// @dev Reverts, in this order: `InvalidFaultReason` (zero reason), `NotAnActiveValidator` (the caller's
    /// validator, resolved like a vote's, holds no active bond), `UnknownBatch`, `RandomnessNotFixed`,
    /// `CommitWindowClosed`, `InvalidProof` (not a leaf of the batch's root), `AlreadyReported`. Needs neither
    /// a seat nor the receipt: a validator that cannot trust the evidence it was served cannot trust the
    /// receipt either, and the leaf with its proof is all that ties the report to the gateway's batch.
    /// @param batchId The batch whose root `proof` leads to; its gateway is the one reported.
    /// @param leaf `receiptLeaf` of the receipt whose evidence was altered.
    /// @param proof Merkle proof of `leaf` against the batch's root.
    /// @param reason Non-zero reason code (ASCII, left-aligned, zero-padded; see `GatewayFaultReported`).
    /// @param evidenceHash Commitment to the evidence the validator keeps; not interpreted on chain.
    function reportGatewayFault(
        uint256 batchId,
        bytes32 leaf,
        bytes32[] calldata proof,
        bytes32 reason,
        bytes32 evidenceHash
    ) external {
        LibAudit.reportGatewayFault(msg.sender, batchId, leaf, proof, reason, evidenceHash);
    }

    // ---------------------------------------------------------------- governance (owner)

    /// @inheritdoc IAudit
    /// @dev Owner only. Applies to batches fixed from now on. Reverts `NotOwner`, `ZeroAddress`,
    /// `InvalidAuditConfig("rateBps")` above 10,000 or `RateCanOnlyRise` unless above the current own rate.
    /// @param worker The worker's bond owner.
    /// @param rateBps Its new own rate; the effective rate is max(default, own).
    function setWorkerAuditRate(address worker, uint16 rateBps) external {
        LibDiamond.enforceIsContractOwner();
        if (worker == address(0)) revert ICommon.ZeroAddress();
        LibAudit.raiseWorkerRate(worker, rateBps);
    }

    /// @inheritdoc IAudit
    /// @dev Owner only. Reverts `NotOwner` or `InvalidAuditConfig(reason)` when `config` breaks a rule or a
    /// deployment limit (see `LibAudit.checkConfig`). Emits the whole config in `AuditConfigAnnounced`.
    function announceAuditConfig(AuditConfig calldata config) external returns (bytes32 id) {
        LibDiamond.enforceIsContractOwner();
        id = LibAudit.announceConfig(config);
    }

    /// @inheritdoc IAudit
    /// @dev Owner only. Reverts `NotOwner`, `InvalidAuditConfig(reason)`, or `ChangeNotAnnounced` /
    /// `ChangeNotReady` / `ChangeExpired` unless this exact config was announced between `cutDelay +
    /// changeWindow` and `cutDelay` ago. Never applies to a batch already fixed.
    function setAuditConfig(AuditConfig calldata config) external {
        LibDiamond.enforceIsContractOwner();
        LibAudit.setConfig(config);
    }

    /// @inheritdoc IAudit
    /// @dev Owner only. Reverts `NotOwner` or `InvalidAuditConfig("randomnessSource")` for an address without
    /// code.
    function announceRandomnessSource(address source) external returns (bytes32 id) {
        LibDiamond.enforceIsContractOwner();
        id = LibAudit.announceSource(source);
    }

    /// @inheritdoc IAudit
    /// @dev Owner only; as `setAuditConfig` for the announcement. Applies to batches fixed from now on.
    function setRandomnessSource(address source) external {
        LibDiamond.enforceIsContractOwner();
        LibAudit.setSource(source);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IAudit
    function voteCommitment(bytes32 leaf, address validator, Vote vote, bytes32 evidenceHash, bytes32 salt)
        external
        pure
        returns (bytes32)
    {
        return LibAudit.voteCommitment(leaf, validator, vote, evidenceHash, salt);
    }

    /// @inheritdoc IAudit
    function receiptLeaf(Receipt calldata receipt) external pure returns (bytes32) {
        return LibAudit.receiptLeaf(receipt);
    }

    /// @inheritdoc IAudit
    function receiptDigest(Receipt calldata receipt) external view returns (bytes32) {
        return LibAudit.receiptDigest(receipt);
    }

    /// @inheritdoc IAudit
    function hashAuditConfig(AuditConfig calldata config) external pure returns (bytes32) {
        return LibAudit.hashConfig(config);
    }

    /// @inheritdoc IAudit
    function hashRandomnessSource(address source) external pure returns (bytes32) {
        return LibAudit.hashSource(source);
    }

    /// @inheritdoc IAudit
    function batchAudit(uint256 batchId) external view returns (BatchAudit memory) {
        return LibAudit.batchAudit(batchId);
    }

    /// @inheritdoc IAudit
    /// @dev Uses the batch's frozen parameters: the default rate of its config and `worker`'s own rate as it
    /// was when the randomness was fixed.
    function isAudited(uint256 batchId, bytes32 leaf, address worker) external view returns (bool) {
        return LibAudit.isAudited(batchId, leaf, worker);
    }

    /// @inheritdoc IAudit
    /// @dev See `LibAudit.draw` for the exact draw; once the audit is open, its stored seats.
    function assignedValidators(uint256 batchId, bytes32 leaf) external view returns (address[] memory) {
        return LibAudit.assignedValidators(batchId, leaf);
    }

    /// @inheritdoc IAudit
    /// @dev All zero (batchId 0) for a leaf nobody committed on.
    function getAudit(bytes32 leaf) external view returns (AuditInfo memory) {
        return LibAudit.getAudit(leaf);
    }

    /// @inheritdoc IAudit
    function voteOf(bytes32 leaf, address validator) external view returns (bool committed, Vote vote) {
        return LibAudit.voteOf(leaf, validator);
    }

    /// @inheritdoc IAudit
    function faultReported(bytes32 leaf, address validator) external view returns (bool) {
        return LibAudit.layout().faultReported[leaf][validator];
    }

    /// @inheritdoc IAudit
    /// @dev The config in force now, for batches fixed from now on.
    function auditConfig() external view returns (AuditConfig memory) {
        return LibAudit.currentConfig();
    }

    /// @inheritdoc IAudit
    function auditLimits() external view returns (AuditLimits memory) {
        return LibAudit.layout().limits;
    }

    /// @inheritdoc IAudit
    /// @dev The worker's own rate (0 when never raised); the effective rate is max(default, own).
    function workerAuditRate(address worker) external view returns (uint16) {
        return LibAudit.workerRate(worker);
    }

    /// @inheritdoc IAudit
    function randomnessSource() external view returns (address) {
        return address(LibAudit.layout().source);
    }
}
