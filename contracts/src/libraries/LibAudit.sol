// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {IAudit, IRandomnessSource} from "../interfaces/IAudit.sol";
import {IBonding} from "../interfaces/IBonding.sol";
import {IGridInit} from "../interfaces/IGridInit.sol";
import {LibBonding} from "./LibBonding.sol";
import {LibPayments} from "./LibPayments.sol";

/// @title Random audits of settled receipts: storage and logic (ERC-7201 `aipg.storage.Audit`).
/// @notice Per batch: `fixRandomness` stores R (from the randomness source, only once the batch is settled and
/// the source is ready) together with the id of the audit config in force, so every parameter of the batch's
/// audits is fixed at that moment. Per leaf (receipt): audited when `keccak256(abi.encode(R, leaf)) % 10_000`
/// is below the worker's rate; validators drawn by stake weight (`draw`); votes while the window is open;
/// `finalize` applies the quorum's verdict.
/// @dev No token ever moves here: a slash takes AIPG out of a bond (LibBonding.slash) and books it as
/// earnings, protocol fees or validator pool, all held by the diamond. So the balance invariant (balance = Σ
/// bonds + deposits + earnings + pools) holds through every audit without a transfer, and `attest` and
/// `finalize` make no external call at all (nothing to re-enter through). `fixRandomness` makes one, a
/// STATICCALL to the randomness source, which cannot change any state.
library LibAudit {
    using Checkpoints for Checkpoints.Trace224;
    using EnumerableSet for EnumerableSet.AddressSet;

    uint256 internal constant BPS = 10_000;
    /// @dev The rate of a worker caught once: every receipt of every batch fixed afterwards is audited.
    uint16 internal constant FULL_RATE = 10_000;

    /// @dev Two slots. `fixIndex` orders fixings (1, 2, …) so a worker's rate can be read as it was at this
    /// batch's fixing (see `workerRates`).
    struct StoredBatch {
        bytes32 randomness; // 0 until fixed
        uint64 fixedAt;
        uint64 deadline;
        uint32 configId;
        uint32 fixIndex;
    }

    struct Ballot {
        address validator; // bond owner
        IAudit.Vote vote;
    }

    /// @dev Opened by the first attestation. Ballots are indexed 0 .. passVotes + failVotes - 1 (no length
    /// slot to write). `batchId` fits 64 bits (a counter); `slashed` is at most a bond, far below 2^192.
    struct StoredAudit {
        address worker;
        uint64 deadline;
        uint8 passVotes;
        uint8 failVotes;
        IAudit.Verdict verdict;
        uint64 batchId;
        uint192 slashed;
        bytes32 modelId;
        mapping(uint256 index => Ballot) ballots;
    }

    /// @custom:storage-location erc7201:aipg.storage.Audit
    /// @dev Append-only: add new fields at the end.
    struct Layout {
        IRandomnessSource source;
        uint32 configId; // the config in force (ids start at 1; 0 = not initialized)
        uint32 fixCount; // batches whose randomness was fixed so far
        mapping(uint32 configId => IAudit.AuditConfig) configs;
        mapping(uint256 batchId => StoredBatch) batches;
        mapping(bytes32 leaf => StoredAudit) audits;
        // A worker's own rate over time, keyed by fix index: a change made after k fixings is stored at key
        // k + 1, so the batch fixed k-th still reads the old value and every later one the new.
        mapping(address worker => Checkpoints.Trace224) workerRates;
    }

    // keccak256(abi.encode(uint256(keccak256("aipg.storage.Audit")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant STORAGE_SLOT =
        0xdf766d27dd1f1bf690434fb2d0f4818f06bf63c7f1fbe2002213d3645a4a7d00;

    function layout() internal pure returns (Layout storage l) {
        bytes32 slot = STORAGE_SLOT;
        assembly {
            l.slot := slot
        }
    }

    // ---------------------------------------------------------------- configuration

    /// @dev Called once by DiamondInit: reverts `InvalidInit(reason)`.
    function initialize(IAudit.AuditConfig memory config, address source) internal {
        Layout storage l = layout();
        if (l.configId != 0) revert IGridInit.InvalidInit("audit already initialized");
        string memory reason = checkConfig(config);
        if (bytes(reason).length != 0) revert IGridInit.InvalidInit(reason);
        if (source.code.length == 0) revert IGridInit.InvalidInit("randomnessSource");
        _setConfig(l, config);
        _setSource(l, source);
    }

    /// @dev Governance (owner): the new config applies to batches fixed from now on.
    function setConfig(IAudit.AuditConfig memory config) internal {
        string memory reason = checkConfig(config);
        if (bytes(reason).length != 0) revert IAudit.InvalidAuditConfig(reason);
        _setConfig(layout(), config);
    }

    function setSource(address source) internal {
        if (source.code.length == 0) revert IAudit.InvalidAuditConfig("randomnessSource");
        _setSource(layout(), source);
    }

    /// @dev The first broken rule's name, or "" when `config` is valid.
    function checkConfig(IAudit.AuditConfig memory config) internal pure returns (string memory) {
        if (config.auditRateBps > BPS) return "auditRateBps";
        if (config.validatorsPerAudit == 0) return "validatorsPerAudit";
        if (config.quorum == 0 || config.quorum > config.validatorsPerAudit) return "quorum";
        if (config.attestWindow == 0) return "attestWindow";
        if (config.finderShareBps > BPS) return "finderShareBps";
        return "";
    }

    function currentConfig() internal view returns (IAudit.AuditConfig memory) {
        Layout storage l = layout();
        return l.configs[l.configId];
    }

    function _setConfig(Layout storage l, IAudit.AuditConfig memory config) private {
        // Cannot overflow: one id per governance call.
        unchecked {
            uint32 id = l.configId + 1;
            l.configs[id] = config;
            l.configId = id;
        }
        emit IAudit.AuditConfigUpdated(config);
    }

    function _setSource(Layout storage l, address source) private {
        l.source = IRandomnessSource(source);
        emit IAudit.RandomnessSourceSet(source);
    }

    // ---------------------------------------------------------------- worker rates

    /// @dev The worker's own rate now (0 = only the default applies).
    function workerRate(address worker) internal view returns (uint16) {
        // Values are only ever written from uint16s.
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint16(layout().workerRates[worker].latest());
    }

    /// @dev Raises `worker`'s own rate; applies to batches fixed from now on. Reverts unless it rises.
    function raiseWorkerRate(address worker, uint16 rateBps) internal {
        if (rateBps > BPS) revert IAudit.InvalidAuditConfig("rateBps");
        uint16 current = workerRate(worker);
        if (rateBps <= current) revert IAudit.RateCanOnlyRise(current, rateBps);
        _pushWorkerRate(layout(), worker, rateBps);
    }

    function _pushWorkerRate(Layout storage l, address worker, uint16 rateBps) private {
        // Cannot overflow: fixCount grows by one per fixed batch.
        unchecked {
            l.workerRates[worker].push(l.fixCount + 1, rateBps);
        }
        emit IAudit.WorkerAuditRateSet(worker, rateBps);
    }

    // ---------------------------------------------------------------- randomness

    /// @dev Stores the batch's randomness, its deadline and the config in force. Reverts `UnknownBatch`,
    /// `RandomnessAlreadyFixed` or `RandomnessNotReady` (the source is not ready, or returned 0).
    function fixRandomness(uint256 batchId) internal {
        LibPayments.StoredBatch storage settled = LibPayments.layout().batches[batchId];
        if (settled.root == bytes32(0)) revert IAudit.UnknownBatch(batchId);
        Layout storage l = layout();
        StoredBatch storage b = l.batches[batchId];
        if (b.randomness != bytes32(0)) revert IAudit.RandomnessAlreadyFixed(batchId);

        uint32 configId = l.configId;
        IAudit.AuditConfig storage c = l.configs[configId];
        // A view function of an interface: compiled to STATICCALL, the source cannot change any state.
        (bool ready, bytes32 value) = l.source.randomness(batchId, settled.settledBlock, c.randomnessDelay);
        if (!ready || value == bytes32(0)) revert IAudit.RandomnessNotReady(batchId);

        uint64 deadline = uint64(block.timestamp) + c.attestWindow;
        uint32 fixIndex;
        // Cannot overflow: one per settled batch.
        unchecked {
            fixIndex = l.fixCount + 1;
        }
        l.fixCount = fixIndex;
        b.randomness = value;
        b.fixedAt = uint64(block.timestamp);
        b.deadline = deadline;
        b.configId = configId;
        b.fixIndex = fixIndex;
        emit IAudit.AuditRandomnessFixed(batchId, value, deadline);
    }

    function batchAudit(uint256 batchId) internal view returns (IAudit.BatchAudit memory) {
        StoredBatch storage b = layout().batches[batchId];
        return IAudit.BatchAudit({randomness: b.randomness, fixedAt: b.fixedAt, deadline: b.deadline});
    }

    // ---------------------------------------------------------------- selection

    /// @dev `max(default rate of the batch's config, worker's own rate as it was when the batch was fixed)`.
    function auditRate(Layout storage l, StoredBatch storage b, address worker)
        private
        view
        returns (uint256)
    {
        uint256 rate = l.configs[b.configId].auditRateBps;
        uint256 own = l.workerRates[worker].upperLookupRecent(b.fixIndex);
        return own > rate ? own : rate;
    }

    /// @dev False until the batch's randomness is fixed.
    function isAudited(uint256 batchId, bytes32 leaf, address worker) internal view returns (bool) {
        Layout storage l = layout();
        StoredBatch storage b = l.batches[batchId];
        bytes32 r = b.randomness;
        if (r == bytes32(0)) return false;
        return uint256(keccak256(abi.encode(r, leaf))) % BPS < auditRate(l, b, worker);
    }

    /// @dev The validators assigned to `leaf`; empty until the batch's randomness is fixed. The one source of
    /// truth for both the view and `attest`.
    function assignedValidators(uint256 batchId, bytes32 leaf) internal view returns (address[] memory) {
        Layout storage l = layout();
        StoredBatch storage b = l.batches[batchId];
        bytes32 r = b.randomness;
        if (r == bytes32(0)) return new address[](0);
        return draw(r, leaf, l.configs[b.configId].validatorsPerAudit);
    }

    /// @notice Draws min(k, n) distinct validators out of the n active ones, by active bond.
    /// @dev Weighted sampling without replacement. With `owners` = `activeValidators()` in its on-chain order
    /// and `w` their active bonds: draw d = 0, 1, … takes `x = uint256(keccak256(abi.encode(R, leaf, d))) % W`,
    /// W the sum of the weights not drawn yet, and picks the first owner (in that order, skipping those drawn)
    /// whose running weight exceeds x. Exactly min(k, n) hashes, no retries.
    /// It is a pure function of (R, leaf, k, the active set in order, active bonds) *now*: a bond that grows,
    /// shrinks, joins or leaves the active set between two calls can change the assignment, and only the
    /// assignment at the moment of an attestation counts. A validator can therefore move its own stake (or
    /// identities in and out of the active set) to try to get assigned to a given leaf; stake checkpoints in
    /// LibBonding (weights as of the fixing block) would close that, and are not there yet.
    function draw(bytes32 r, bytes32 leaf, uint256 k) internal view returns (address[] memory chosen) {
        LibBonding.Layout storage v = LibBonding.layout(IBonding.Role.Validator);
        address[] memory owners = v.activeOwners.values();
        uint256 n = owners.length;
        if (k > n) k = n;
        uint256[] memory weights = new uint256[](n);
        uint256 total;
        for (uint256 i; i < n; ++i) {
            uint256 w = v.bonds[owners[i]].amount;
            weights[i] = w;
            // Cannot overflow: bonds are AIPG the diamond holds, bounded by the token's supply.
            unchecked {
                total += w;
            }
        }
        chosen = new address[](k);
        for (uint256 d; d < k; ++d) {
            uint256 x = uint256(keccak256(abi.encode(r, leaf, d))) % total;
            uint256 j;
            // Terminates below n: x < total, the sum of the weights still in; a drawn owner weighs 0 and
            // so is never picked again.
            while (x >= weights[j]) {
                // x >= weights[j] was just checked.
                unchecked {
                    x -= weights[j];
                }
                ++j;
            }
            chosen[d] = owners[j];
            // weights[j] is part of total.
            unchecked {
                total -= weights[j];
            }
            weights[j] = 0;
        }
    }

    // ---------------------------------------------------------------- attestations

    /// @dev The leaf of the batch Merkle tree: OpenZeppelin standard tree, double-hashed abi.encode of every
    /// receipt field in order (the struct is static, so abi.encode(receipt) is exactly that).
    function receiptLeaf(IAudit.Receipt calldata receipt) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(receipt))));
    }

    /// @dev Resolves the caller to its validator bond owner: an operator key to its owner, else the caller.
    function validatorOf(address caller) internal view returns (address owner) {
        owner = LibBonding.ownerOf(IBonding.Role.Validator, caller);
        if (owner == address(0)) owner = caller;
    }

    /// @dev Records `caller`'s vote on `receipt` of batch `batchId`; the first vote opens the audit.
    function attest(
        address caller,
        uint256 batchId,
        IAudit.Receipt calldata receipt,
        bytes32[] calldata proof,
        IAudit.Vote vote,
        bytes32 evidenceHash
    ) internal {
        bytes32 leaf = receiptLeaf(receipt);
        (bytes32 r, uint64 deadline, uint256 k) = _checkReceipt(batchId, receipt, leaf, proof, vote);
        address validator = validatorOf(caller);
        if (!_contains(draw(r, leaf, k), validator)) revert IAudit.NotAssigned(validator, leaf);
        _recordVote(layout().audits[leaf], batchId, receipt, leaf, deadline, validator, vote);
        emit IAudit.Attested(batchId, leaf, validator, vote, evidenceHash);
    }

    /// @dev The checks on the batch, the window, the vote and the receipt. Returns the batch's R, deadline
    /// and validators per audit.
    function _checkReceipt(
        uint256 batchId,
        IAudit.Receipt calldata receipt,
        bytes32 leaf,
        bytes32[] calldata proof,
        IAudit.Vote vote
    ) private view returns (bytes32 r, uint64 deadline, uint256 k) {
        bytes32 root = LibPayments.layout().batches[batchId].root;
        if (root == bytes32(0)) revert IAudit.UnknownBatch(batchId);
        Layout storage l = layout();
        StoredBatch storage b = l.batches[batchId];
        r = b.randomness;
        if (r == bytes32(0)) revert IAudit.RandomnessNotFixed(batchId);
        deadline = b.deadline;
        // The window is an hour or more; seconds of proposer drift do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp > deadline) revert IAudit.AttestWindowClosed(deadline);
        if (vote != IAudit.Vote.Pass && vote != IAudit.Vote.Fail) revert IAudit.InvalidVote();
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert IAudit.InvalidProof();
        if (
            receipt.confidential
                || uint256(keccak256(abi.encode(r, leaf))) % BPS >= auditRate(l, b, receipt.worker)
        ) revert IAudit.NotAudited(leaf);
        k = l.configs[b.configId].validatorsPerAudit;
    }

    function _recordVote(
        StoredAudit storage a,
        uint256 batchId,
        IAudit.Receipt calldata receipt,
        bytes32 leaf,
        uint64 deadline,
        address validator,
        IAudit.Vote vote
    ) private {
        uint256 openedIn = a.batchId;
        if (openedIn == 0) {
            a.worker = receipt.worker;
            a.deadline = deadline;
            a.batchId = SafeCast.toUint64(batchId);
            a.modelId = receipt.modelId;
        } else if (openedIn != batchId) {
            revert IAudit.AuditedInOtherBatch(leaf, openedIn);
        }
        // Unreachable through an open window (finalize waits for the deadline), kept as a second line.
        if (a.verdict != IAudit.Verdict.None) revert IAudit.AlreadyFinalized(leaf);

        uint256 passVotes = a.passVotes;
        uint256 failVotes = a.failVotes;
        uint256 votes = passVotes + failVotes;
        for (uint256 i; i < votes; ++i) {
            if (a.ballots[i].validator == validator) revert IAudit.AlreadyAttested(validator, leaf);
        }
        a.ballots[votes] = Ballot({validator: validator, vote: vote});
        // Checked on purpose: more than 255 votes on one side (only possible through heavy stake churn
        // during one window) reverts rather than wraps.
        if (vote == IAudit.Vote.Pass) a.passVotes = SafeCast.toUint8(passVotes + 1);
        else a.failVotes = SafeCast.toUint8(failVotes + 1);
    }

    function voteOf(bytes32 leaf, address validator) internal view returns (IAudit.Vote) {
        StoredAudit storage a = layout().audits[leaf];
        uint256 votes = uint256(a.passVotes) + a.failVotes;
        for (uint256 i; i < votes; ++i) {
            Ballot storage ballot = a.ballots[i];
            if (ballot.validator == validator) return ballot.vote;
        }
        return IAudit.Vote.None;
    }

    function getAudit(bytes32 leaf) internal view returns (IAudit.AuditInfo memory) {
        StoredAudit storage a = layout().audits[leaf];
        return IAudit.AuditInfo({
            batchId: a.batchId,
            worker: a.worker,
            modelId: a.modelId,
            deadline: a.deadline,
            passVotes: a.passVotes,
            failVotes: a.failVotes,
            verdict: a.verdict,
            slashed: a.slashed
        });
    }

    // ---------------------------------------------------------------- verdicts

    /// @dev Applies the verdict of `leaf`'s audit once its window has closed. Effects only: bonds, earnings and
    /// pools are internal books, no call leaves the diamond. The verdict is written before anything else, so
    /// a second call reverts `AlreadyFinalized` whatever happens after.
    function finalize(bytes32 leaf) internal {
        Layout storage l = layout();
        StoredAudit storage a = l.audits[leaf];
        uint256 batchId = a.batchId;
        if (batchId == 0) revert IAudit.NothingToFinalize(leaf);
        if (a.verdict != IAudit.Verdict.None) revert IAudit.AlreadyFinalized(leaf);
        uint64 deadline = a.deadline;
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp <= deadline) revert IAudit.AttestWindowOpen(deadline);

        IAudit.AuditConfig storage c = l.configs[l.batches[batchId].configId];
        uint256 passVotes = a.passVotes;
        uint256 failVotes = a.failVotes;
        IAudit.Verdict verdict;
        if (passVotes + failVotes < c.quorum || passVotes == failVotes) {
            verdict = IAudit.Verdict.Inconclusive;
        } else {
            verdict = failVotes > passVotes ? IAudit.Verdict.Fail : IAudit.Verdict.Pass;
        }
        a.verdict = verdict;

        address worker = a.worker;
        uint256 slashed;
        if (verdict == IAudit.Verdict.Fail) {
            slashed = _applyFail(l, a, c, leaf, worker, failVotes);
        } else if (verdict == IAudit.Verdict.Pass) {
            _applyPass(a, c, leaf, passVotes + failVotes);
        }
        emit IAudit.AuditFinalized(batchId, leaf, worker, verdict, slashed);
    }

    /// @dev FAIL: slash the worker, share the finder part equally among the FAIL voters (dust and the rest to
    /// protocol fees), slash the PASS voters to the validator pool, audit the worker fully from now on.
    function _applyFail(
        Layout storage l,
        StoredAudit storage a,
        IAudit.AuditConfig storage c,
        bytes32 leaf,
        address worker,
        uint256 failVotes
    ) private returns (uint256 slashed) {
        slashed = LibBonding.slash(IBonding.Role.Worker, worker, c.workerSlashAmount);
        a.slashed = SafeCast.toUint192(slashed); // at most a bond, far below 2^192
        uint256 each = slashed * c.finderShareBps / BPS / failVotes; // failVotes > passVotes >= 0
        uint256 falseSlash = c.falseAttestationSlash;
        uint256 votes = failVotes + a.passVotes;
        for (uint256 i; i < votes; ++i) {
            Ballot storage ballot = a.ballots[i];
            address validator = ballot.validator;
            if (ballot.vote == IAudit.Vote.Fail) {
                LibPayments.creditEarnings(validator, each);
                emit IAudit.ValidatorRewarded(leaf, validator, each);
            } else {
                _slashFalse(leaf, validator, falseSlash);
            }
        }
        uint256 rest;
        // each * failVotes <= slashed * finderShareBps / BPS <= slashed: the treasury gets the rest,
        // rounding dust included, so every slashed wei is booked somewhere.
        unchecked {
            rest = slashed - each * failVotes;
        }
        LibPayments.layout().protocolFees += rest;
        if (workerRate(worker) < FULL_RATE) _pushWorkerRate(l, worker, FULL_RATE);
    }

    /// @dev PASS: slash the FAIL voters to the validator pool first, then pay each PASS voter the reward from
    /// the pool (as far as it goes).
    function _applyPass(StoredAudit storage a, IAudit.AuditConfig storage c, bytes32 leaf, uint256 votes)
        private
    {
        uint256 falseSlash = c.falseAttestationSlash;
        for (uint256 i; i < votes; ++i) {
            Ballot storage ballot = a.ballots[i];
            if (ballot.vote == IAudit.Vote.Fail) _slashFalse(leaf, ballot.validator, falseSlash);
        }
        uint256 reward = c.passReward;
        for (uint256 i; i < votes; ++i) {
            Ballot storage ballot = a.ballots[i];
            if (ballot.vote == IAudit.Vote.Pass) {
                address validator = ballot.validator;
                uint256 paid = LibPayments.payFromValidatorPool(validator, reward);
                emit IAudit.ValidatorRewarded(leaf, validator, paid);
            }
        }
    }

    function _slashFalse(bytes32 leaf, address validator, uint256 amount) private {
        uint256 taken = LibBonding.slash(IBonding.Role.Validator, validator, amount);
        LibPayments.addToValidatorPool(taken);
        emit IAudit.FalseAttestationSlashed(leaf, validator, taken);
    }

    function _contains(address[] memory list, address who) private pure returns (bool) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == who) return true;
        }
        return false;
    }
}
