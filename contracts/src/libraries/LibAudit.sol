// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {IAudit, IRandomnessSource} from "../interfaces/IAudit.sol";
import {IBonding} from "../interfaces/IBonding.sol";
import {IGridInit} from "../interfaces/IGridInit.sol";
import {LibBonding} from "./LibBonding.sol";
import {LibPayments} from "./LibPayments.sol";
import {LibTimelock} from "./LibTimelock.sol";

/// @title Random audits of settled receipts: storage and logic (ERC-7201 `aipg.storage.Audit`).
/// @notice Per batch: `fixRandomness` stores R (from the randomness source, only once the batch is settled and
/// the source is ready) together with the id of the audit config in force, so every parameter of the batch's
/// audits is fixed at that moment. Per leaf (receipt): audited when `keccak256(abi.encode(R, leaf)) % 10_000`
/// is below the worker's rate; its seats are drawn by stake weight (`draw`) from the validators' checkpointed
/// stakes of the block before settlement and stored when the audit opens; seated validators commit, then
/// reveal; `finalize` applies the verdict of the revealed votes.
/// @dev No token ever moves here: a slash takes AIPG out of a bond (LibBonding.slash) and books it as
/// earnings, protocol fees or validator pool, all held by the diamond. So the balance invariant (balance = Σ
/// bonds + deposits + earnings + pools) holds through every audit without a transfer, and `commitVote`,
/// `revealVote` and `finalize` make no external call at all (ecrecover is a precompile). `fixRandomness` makes
/// one, a STATICCALL to the randomness source, which cannot change any state.
library LibAudit {
    using Checkpoints for Checkpoints.Trace224;

    uint256 internal constant BPS = 10_000;
    /// @dev The rate of a worker caught once: every receipt of every batch fixed afterwards is audited.
    uint16 internal constant FULL_RATE = 10_000;

    /// @dev EIP-712 `Receipt`, field for field as `IAudit.Receipt` (and `receiptTypes` in packages/core).
    bytes32 internal constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(bytes32 jobId,address gateway,address payer,address worker,bytes32 modelId,bytes32 requestHash,"
        "bytes32 outputHash,uint64 inputUnits,uint64 outputUnits,uint256 fee,uint64 completedAt,bool confidential,"
        "uint64 seq)"
    );
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant DOMAIN_NAME_HASH = keccak256("AIPG Grid");
    bytes32 internal constant DOMAIN_VERSION_HASH = keccak256("1");
    /// @dev Tags of announced rule changes (LibTimelock ids), so no two kinds of change share an id.
    bytes32 internal constant CONFIG_CHANGE = keccak256("aipg.change.AuditConfig");
    bytes32 internal constant SOURCE_CHANGE = keccak256("aipg.change.RandomnessSource");

    /// @dev Two slots. `fixIndex` orders fixings (1, 2, …) so a worker's rate can be read as it was at this
    /// batch's fixing (see `workerRates`).
    struct StoredBatch {
        bytes32 randomness; // 0 until fixed
        uint64 fixedAt;
        uint64 deadline; // commit deadline
        uint64 revealDeadline;
        uint32 configId;
        uint32 fixIndex;
    }

    /// @dev One assigned validator of an audit: two slots.
    struct Seat {
        address validator; // bond owner
        IAudit.Vote vote; // None until revealed
        bytes32 commitment; // 0 until committed
    }

    /// @dev Opened by the first commit. Seats are indexed 0 .. seats - 1 (at most k, fixed at opening).
    /// `batchId` fits 64 bits (a counter); `slashed` is at most a bond, far below 2^192.
    struct StoredAudit {
        address worker;
        uint64 batchId;
        uint8 seats;
        uint8 commits;
        uint8 passVotes;
        uint8 failVotes;
        IAudit.Verdict verdict;
        uint192 slashed;
        bytes32 modelId;
        mapping(uint256 index => Seat) seat;
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
        IAudit.AuditLimits limits; // fixed at deployment, no setter
        // Gateway fault reports: one per validator (bond owner) and leaf.
        mapping(bytes32 leaf => mapping(address validator => bool)) faultReported;
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

    /// @dev Called once by DiamondInit, after the bonding minimums are set: reverts `InvalidInit(reason)`.
    function initialize(IAudit.AuditConfig memory config, IAudit.AuditLimits memory limits, address source)
        internal
    {
        Layout storage l = layout();
        if (l.configId != 0) revert IGridInit.InvalidInit("audit already initialized");
        string memory reason = checkLimits(limits);
        if (bytes(reason).length != 0) revert IGridInit.InvalidInit(reason);
        l.limits = limits;
        reason = checkConfig(config);
        if (bytes(reason).length != 0) revert IGridInit.InvalidInit(reason);
        if (source.code.length == 0) revert IGridInit.InvalidInit("randomnessSource");
        _setConfig(l, config);
        _setSource(l, source);
    }

    /// @dev Governance (owner): announces `config`; it can be applied once the cut delay has passed.
    function announceConfig(IAudit.AuditConfig memory config) internal returns (bytes32 id) {
        _requireValid(config);
        id = hashConfig(config);
        (uint64 executableAt, uint64 expiresAt) = LibTimelock.announce(id);
        emit IAudit.AuditConfigAnnounced(id, config, executableAt, expiresAt);
    }

    /// @dev Governance (owner): applies an announced, matured config to batches fixed from now on.
    function setConfig(IAudit.AuditConfig memory config) internal {
        _requireValid(config);
        LibTimelock.consume(hashConfig(config));
        _setConfig(layout(), config);
    }

    function announceSource(address source) internal returns (bytes32 id) {
        if (source.code.length == 0) revert IAudit.InvalidAuditConfig("randomnessSource");
        id = hashSource(source);
        (uint64 executableAt, uint64 expiresAt) = LibTimelock.announce(id);
        emit IAudit.RandomnessSourceAnnounced(id, source, executableAt, expiresAt);
    }

    function setSource(address source) internal {
        if (source.code.length == 0) revert IAudit.InvalidAuditConfig("randomnessSource");
        LibTimelock.consume(hashSource(source));
        _setSource(layout(), source);
    }

    function hashConfig(IAudit.AuditConfig memory config) internal pure returns (bytes32) {
        return keccak256(abi.encode(CONFIG_CHANGE, config));
    }

    function hashSource(address source) internal pure returns (bytes32) {
        return keccak256(abi.encode(SOURCE_CHANGE, source));
    }

    /// @dev The first broken limit rule's name, or "" when `limits` can be fixed for the diamond's lifetime.
    function checkLimits(IAudit.AuditLimits memory limits) internal pure returns (string memory) {
        if (limits.maxWorkerSlashBps > BPS) return "maxWorkerSlashBps";
        if (limits.maxFalseAttestationSlashBps > BPS) return "maxFalseAttestationSlashBps";
        if (limits.maxFinderShareBps > BPS) return "maxFinderShareBps";
        if (limits.minValidatorsPerAudit == 0) return "minValidatorsPerAudit";
        if (limits.minQuorum == 0) return "minQuorum";
        if (limits.minCommitWindow == 0) return "minCommitWindow";
        if (limits.minRevealWindow == 0) return "minRevealWindow";
        return "";
    }

    /// @dev The first broken rule's name, or "" when `config` is valid within the deployment's limits: slashes
    /// at most a fixed fraction of the minimum bonds, at least the minimum seats, a quorum that is a majority
    /// of the seats and at least the minimum, windows at least the minimums.
    function checkConfig(IAudit.AuditConfig memory config) internal view returns (string memory) {
        IAudit.AuditLimits storage lim = layout().limits;
        if (config.auditRateBps > BPS) return "auditRateBps";
        if (config.validatorsPerAudit < lim.minValidatorsPerAudit) return "validatorsPerAudit";
        if (
            config.quorum < lim.minQuorum || config.quorum > config.validatorsPerAudit
                || uint256(config.quorum) * 2 <= config.validatorsPerAudit
        ) return "quorum";
        if (config.commitWindow < lim.minCommitWindow) return "commitWindow";
        if (config.revealWindow < lim.minRevealWindow) return "revealWindow";
        if (config.finderShareBps > lim.maxFinderShareBps) return "finderShareBps";
        uint256 workerMin = LibBonding.layout(IBonding.Role.Worker).minimum;
        if (config.workerSlashAmount > workerMin * lim.maxWorkerSlashBps / BPS) return "workerSlashAmount";
        uint256 validatorMin = LibBonding.layout(IBonding.Role.Validator).minimum;
        if (config.falseAttestationSlash > validatorMin * lim.maxFalseAttestationSlashBps / BPS) {
            return "falseAttestationSlash";
        }
        return "";
    }

    function currentConfig() internal view returns (IAudit.AuditConfig memory) {
        Layout storage l = layout();
        return l.configs[l.configId];
    }

    function _requireValid(IAudit.AuditConfig memory config) private view {
        string memory reason = checkConfig(config);
        if (bytes(reason).length != 0) revert IAudit.InvalidAuditConfig(reason);
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

    /// @dev Stores the batch's randomness, its deadlines and the config in force. Reverts `UnknownBatch`,
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

        uint64 deadline = uint64(block.timestamp) + c.commitWindow;
        uint32 fixIndex;
        // Cannot overflow: one per settled batch.
        unchecked {
            fixIndex = l.fixCount + 1;
        }
        l.fixCount = fixIndex;
        b.randomness = value;
        b.fixedAt = uint64(block.timestamp);
        b.deadline = deadline;
        b.revealDeadline = deadline + c.revealWindow;
        b.configId = configId;
        b.fixIndex = fixIndex;
        emit IAudit.AuditRandomnessFixed(batchId, value, deadline);
    }

    function batchAudit(uint256 batchId) internal view returns (IAudit.BatchAudit memory) {
        StoredBatch storage b = layout().batches[batchId];
        return IAudit.BatchAudit({
            randomness: b.randomness, fixedAt: b.fixedAt, deadline: b.deadline, revealDeadline: b.revealDeadline
        });
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

    /// @dev The validators assigned to `leaf`; empty until the batch's randomness is fixed. Once the audit is
    /// open, its stored seats (the same draw, frozen).
    function assignedValidators(uint256 batchId, bytes32 leaf) internal view returns (address[] memory chosen) {
        Layout storage l = layout();
        StoredAudit storage a = l.audits[leaf];
        if (a.batchId == batchId && batchId != 0) {
            uint256 n = a.seats;
            chosen = new address[](n);
            for (uint256 i; i < n; ++i) {
                chosen[i] = a.seat[i].validator;
            }
            return chosen;
        }
        StoredBatch storage b = l.batches[batchId];
        bytes32 r = b.randomness;
        if (r == bytes32(0)) return new address[](0);
        return draw(r, leaf, l.configs[b.configId].validatorsPerAudit, _seatBlock(batchId));
    }

    /// @dev Seats are drawn from the stakes at the end of the block before the batch's settlement: no bond,
    /// unbond or identity created after settlement (when R could start to be known) changes them.
    function _seatBlock(uint256 batchId) private view returns (uint48) {
        uint64 settledBlock = LibPayments.layout().batches[batchId].settledBlock;
        return settledBlock == 0 ? 0 : SafeCast.toUint48(settledBlock - 1);
    }

    /// @notice Draws min(k, n) distinct validators out of the n with weight at block `atBlock`, by weight.
    /// @dev Weighted sampling without replacement over `members` (every validator that ever bonded, in order
    /// of first bond) with weights `weightAt(member, atBlock)`: draw d = 0, 1, … takes
    /// `x = uint256(keccak256(abi.encode(R, leaf, d))) % W`, W the sum of the weights not drawn yet, and picks
    /// the first member (in that order, skipping those drawn and those without weight) whose running weight
    /// exceeds x. Exactly min(k, n) hashes, no retries. A pure function of R, the leaf, k and the checkpoints
    /// at `atBlock`, which no later transaction can change.
    function draw(bytes32 r, bytes32 leaf, uint256 k, uint48 atBlock) internal view returns (address[] memory chosen) {
        address[] storage members = LibBonding.layout(IBonding.Role.Validator).members;
        uint256 n = members.length;
        address[] memory owners = new address[](n);
        uint256[] memory weights = new uint256[](n);
        uint256 total;
        uint256 withWeight;
        for (uint256 i; i < n; ++i) {
            address owner = members[i];
            uint256 w = LibBonding.weightAt(owner, atBlock);
            owners[i] = owner;
            weights[i] = w;
            // Cannot overflow: bonds are AIPG the diamond holds, bounded by the token's supply.
            unchecked {
                total += w;
                if (w != 0) ++withWeight;
            }
        }
        if (k > withWeight) k = withWeight;
        chosen = new address[](k);
        for (uint256 d; d < k; ++d) {
            uint256 x = uint256(keccak256(abi.encode(r, leaf, d))) % total;
            uint256 j;
            // Terminates below n: x < total, the sum of the weights still in; a drawn or weightless member
            // weighs 0 and so is never picked.
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

    // ---------------------------------------------------------------- receipts

    /// @dev The leaf of the batch Merkle tree: OpenZeppelin standard tree, double-hashed abi.encode of every
    /// receipt field in order (the struct is static, so abi.encode(receipt) is exactly that).
    function receiptLeaf(IAudit.Receipt calldata receipt) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(receipt))));
    }

    /// @dev The EIP-712 digest of `receipt` under this diamond's domain ("AIPG Grid", "1", chain id, diamond).
    /// Every field is static, so `abi.encode(typehash, receipt)` is exactly EIP-712's `encodeData`.
    function receiptDigest(IAudit.Receipt calldata receipt) internal view returns (bytes32) {
        bytes32 domain = keccak256(
            abi.encode(DOMAIN_TYPEHASH, DOMAIN_NAME_HASH, DOMAIN_VERSION_HASH, block.chainid, address(this))
        );
        return MessageHashUtils.toTypedDataHash(domain, keccak256(abi.encode(RECEIPT_TYPEHASH, receipt)));
    }

    /// @dev Reverts `InvalidReceiptSignature` unless `signature` is the worker's signature of `receipt` by the
    /// operator key its bond had at `completedAt` (or the second before: a rotation in the very second of
    /// signing does not void a receipt; a rotation after signing does not either) or at
    /// `settledAt` (so a worker clock behind the chain's cannot make its receipts unauditable). A key never
    /// authorised for that bond at either moment cannot produce an auditable receipt; ECDSA rejects
    /// malleable and malformed signatures.
    function requireWorkerSigned(IAudit.Receipt calldata receipt, bytes calldata signature, uint64 settledAt)
        internal
        view
    {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(receiptDigest(receipt), signature);
        if (err == ECDSA.RecoverError.NoError && signer != address(0)) {
            address worker = receipt.worker;
            uint64 completedAt = receipt.completedAt;
            if (signer == LibBonding.operatorAt(IBonding.Role.Worker, worker, completedAt)) return;
            // The history keeps one key per second: a key replaced in the very second it signed is the one in
            // force the second before.
            if (completedAt != 0 && signer == LibBonding.operatorAt(IBonding.Role.Worker, worker, completedAt - 1)) {
                return;
            }
            if (signer == LibBonding.operatorAt(IBonding.Role.Worker, worker, settledAt)) return;
        }
        revert IAudit.InvalidReceiptSignature(receipt.worker, signer);
    }

    /// @dev Resolves the caller to its validator bond owner: an operator key to its owner, else the caller.
    /// A caller that holds a validator bond itself always acts as that bond, so nobody can capture a
    /// validator's owner address by naming it as its own operator key.
    function validatorOf(address caller) internal view returns (address owner) {
        if (LibBonding.bondedAmount(IBonding.Role.Validator, caller) != 0) return caller;
        owner = LibBonding.ownerOf(IBonding.Role.Validator, caller);
        if (owner == address(0)) owner = caller;
    }

    function voteCommitment(bytes32 leaf, address validator, IAudit.Vote vote, bytes32 evidenceHash, bytes32 salt)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(leaf, validator, vote, evidenceHash, salt));
    }

    // ---------------------------------------------------------------- commit, reveal

    /// @dev Records `caller`'s validator's commitment on `receipt`; the first commit opens the audit.
    function commitVote(
        address caller,
        uint256 batchId,
        IAudit.Receipt calldata receipt,
        bytes calldata signature,
        bytes32[] calldata proof,
        bytes32 commitment
    ) internal {
        if (commitment == bytes32(0)) revert IAudit.InvalidVote();
        Layout storage l = layout();
        bytes32 leaf = receiptLeaf(receipt);
        StoredAudit storage a = l.audits[leaf];
        uint256 openedIn = a.batchId;
        if (openedIn == 0) {
            _open(l, a, batchId, receipt, signature, proof, leaf);
        } else if (openedIn != batchId) {
            // A receipt belongs to one batch only (its gateway's range holding its seq).
            revert IAudit.ReceiptNotInBatch(batchId, receipt.gateway, receipt.seq);
        } else {
            uint64 deadline = l.batches[batchId].deadline;
            // forge-lint: disable-next-line(block-timestamp)
            if (block.timestamp > deadline) revert IAudit.CommitWindowClosed(deadline);
        }
        address validator = validatorOf(caller);
        Seat storage s = _seatOf(a, validator, leaf);
        if (s.commitment != bytes32(0)) revert IAudit.AlreadyCommitted(validator, leaf);
        s.commitment = commitment;
        // At most `seats` (<= 255) commits: one per seat.
        unchecked {
            ++a.commits;
        }
        emit IAudit.VoteCommitted(batchId, leaf, validator, commitment);
    }

    /// @dev Every check a receipt must pass before anyone can vote on it, then the seats are stored.
    function _open(
        Layout storage l,
        StoredAudit storage a,
        uint256 batchId,
        IAudit.Receipt calldata receipt,
        bytes calldata signature,
        bytes32[] calldata proof,
        bytes32 leaf
    ) private {
        (bytes32 r, uint32 configId) = _checkReceipt(l, batchId, receipt, proof, leaf);
        requireWorkerSigned(receipt, signature, LibPayments.layout().batches[batchId].settledAt);
        address[] memory seats = draw(r, leaf, l.configs[configId].validatorsPerAudit, _seatBlock(batchId));
        uint256 n = seats.length;
        for (uint256 i; i < n; ++i) {
            a.seat[i].validator = seats[i];
        }
        a.worker = receipt.worker;
        a.batchId = SafeCast.toUint64(batchId);
        a.seats = SafeCast.toUint8(n);
        a.modelId = receipt.modelId;
        emit IAudit.AuditOpened(batchId, leaf, receipt.worker, seats);
    }

    /// @dev The batch, its window, the proof, the receipt's place in the batch, and the draw. Returns R and the
    /// batch's config id.
    function _checkReceipt(
        Layout storage l,
        uint256 batchId,
        IAudit.Receipt calldata receipt,
        bytes32[] calldata proof,
        bytes32 leaf
    ) private view returns (bytes32 r, uint32 configId) {
        LibPayments.StoredBatch storage settled = LibPayments.layout().batches[batchId];
        bytes32 root = settled.root;
        if (root == bytes32(0)) revert IAudit.UnknownBatch(batchId);
        StoredBatch storage b = l.batches[batchId];
        r = b.randomness;
        if (r == bytes32(0)) revert IAudit.RandomnessNotFixed(batchId);
        uint64 deadline = b.deadline;
        // The window is an hour or more; seconds of proposer drift do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp > deadline) revert IAudit.CommitWindowClosed(deadline);
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert IAudit.InvalidProof();
        uint64 firstSeq = settled.firstSeq;
        if (
            receipt.gateway != settled.gateway || receipt.seq < firstSeq
                || receipt.seq - firstSeq >= settled.receiptCount
        ) revert IAudit.ReceiptNotInBatch(batchId, receipt.gateway, receipt.seq);
        // A confidential receipt is drawn like any other: its validators check the TEE evidence it was signed
        // under instead of re-running it, so marking a job confidential never dodges an audit.
        if (uint256(keccak256(abi.encode(r, leaf))) % BPS >= auditRate(l, b, receipt.worker)) {
            revert IAudit.NotAudited(leaf);
        }
        configId = b.configId;
    }

    function _seatOf(StoredAudit storage a, address validator, bytes32 leaf) private view returns (Seat storage) {
        uint256 n = a.seats;
        for (uint256 i; i < n; ++i) {
            Seat storage s = a.seat[i];
            if (s.validator == validator) return s;
        }
        revert IAudit.NotAssigned(validator, leaf);
    }

    /// @dev Reveals `caller`'s validator's vote once the commit window has closed and before the reveal deadline.
    function revealVote(address caller, bytes32 leaf, IAudit.Vote vote, bytes32 evidenceHash, bytes32 salt)
        internal
    {
        Layout storage l = layout();
        StoredAudit storage a = l.audits[leaf];
        address validator = validatorOf(caller);
        uint256 batchId = a.batchId;
        if (batchId == 0) revert IAudit.NotCommitted(validator, leaf);
        StoredBatch storage b = l.batches[batchId];
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp <= b.deadline) revert IAudit.RevealWindowNotOpen(b.deadline);
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp > b.revealDeadline) revert IAudit.RevealWindowClosed(b.revealDeadline);
        if (vote != IAudit.Vote.Pass && vote != IAudit.Vote.Fail) revert IAudit.InvalidVote();
        Seat storage s = _seatOf(a, validator, leaf);
        bytes32 commitment = s.commitment;
        if (commitment == bytes32(0)) revert IAudit.NotCommitted(validator, leaf);
        if (s.vote != IAudit.Vote.None) revert IAudit.AlreadyRevealed(validator, leaf);
        if (voteCommitment(leaf, validator, vote, evidenceHash, salt) != commitment) {
            revert IAudit.CommitmentMismatch(validator, leaf);
        }
        s.vote = vote;
        // At most one reveal per seat (<= 255).
        unchecked {
            if (vote == IAudit.Vote.Pass) ++a.passVotes;
            else ++a.failVotes;
        }
        emit IAudit.Attested(batchId, leaf, validator, vote, evidenceHash);
    }

    // ---------------------------------------------------------------- gateway faults

    /// @dev Records `caller`'s validator's report that the batch's gateway served altered evidence for `leaf`.
    /// A public record only: no funds move, nothing else reads the flag but `faultReported`.
    function reportGatewayFault(
        address caller,
        uint256 batchId,
        bytes32 leaf,
        bytes32[] calldata proof,
        bytes32 reason,
        bytes32 evidenceHash
    ) internal {
        if (reason == bytes32(0)) revert IAudit.InvalidFaultReason();
        address validator = validatorOf(caller);
        if (!LibBonding.isActive(IBonding.Role.Validator, validator)) {
            revert IAudit.NotAnActiveValidator(validator);
        }
        LibPayments.StoredBatch storage settled = LibPayments.layout().batches[batchId];
        bytes32 root = settled.root;
        if (root == bytes32(0)) revert IAudit.UnknownBatch(batchId);
        Layout storage l = layout();
        StoredBatch storage b = l.batches[batchId];
        if (b.randomness == bytes32(0)) revert IAudit.RandomnessNotFixed(batchId);
        uint64 deadline = b.deadline;
        // The window is an hour or more; seconds of proposer drift do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp > deadline) revert IAudit.CommitWindowClosed(deadline);
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert IAudit.InvalidProof();
        mapping(address => bool) storage reported = l.faultReported[leaf];
        if (reported[validator]) revert IAudit.AlreadyReported(validator, leaf);
        reported[validator] = true;
        emit IAudit.GatewayFaultReported(settled.gateway, batchId, leaf, validator, reason, evidenceHash);
    }

    function voteOf(bytes32 leaf, address validator) internal view returns (bool committed, IAudit.Vote vote) {
        StoredAudit storage a = layout().audits[leaf];
        uint256 n = a.seats;
        for (uint256 i; i < n; ++i) {
            Seat storage s = a.seat[i];
            if (s.validator == validator) return (s.commitment != bytes32(0), s.vote);
        }
        return (false, IAudit.Vote.None);
    }

    function getAudit(bytes32 leaf) internal view returns (IAudit.AuditInfo memory info) {
        Layout storage l = layout();
        StoredAudit storage a = l.audits[leaf];
        StoredBatch storage b = l.batches[a.batchId];
        info = IAudit.AuditInfo({
            batchId: a.batchId,
            worker: a.worker,
            modelId: a.modelId,
            deadline: a.batchId == 0 ? 0 : b.deadline,
            revealDeadline: a.batchId == 0 ? 0 : b.revealDeadline,
            seats: a.seats,
            commits: a.commits,
            passVotes: a.passVotes,
            failVotes: a.failVotes,
            verdict: a.verdict,
            slashed: a.slashed
        });
    }

    // ---------------------------------------------------------------- verdicts

    /// @dev Applies the verdict of `leaf`'s audit once its reveal window has closed. Effects only: bonds,
    /// earnings and pools are internal books, no call leaves the diamond. The verdict is written before
    /// anything else, so a second call reverts `AlreadyFinalized` whatever happens after.
    function finalize(bytes32 leaf) internal {
        Layout storage l = layout();
        StoredAudit storage a = l.audits[leaf];
        uint256 batchId = a.batchId;
        if (batchId == 0) revert IAudit.NothingToFinalize(leaf);
        if (a.verdict != IAudit.Verdict.None) revert IAudit.AlreadyFinalized(leaf);
        StoredBatch storage b = l.batches[batchId];
        uint64 revealDeadline = b.revealDeadline;
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp <= revealDeadline) revert IAudit.AuditWindowOpen(revealDeadline);

        IAudit.AuditConfig storage c = l.configs[b.configId];
        uint256 passVotes = a.passVotes;
        uint256 failVotes = a.failVotes;
        IAudit.Verdict verdict;
        if (passVotes + failVotes < c.quorum || passVotes == failVotes) {
            verdict = IAudit.Verdict.Inconclusive;
        } else {
            verdict = failVotes > passVotes ? IAudit.Verdict.Fail : IAudit.Verdict.Pass;
        }
        a.verdict = verdict;

        _slashAgainst(a, leaf, verdict, c.falseAttestationSlash);

        address worker = a.worker;
        uint256 slashed;
        if (verdict == IAudit.Verdict.Fail) {
            slashed = _applyFail(l, a, c, leaf, worker, failVotes);
        } else if (verdict == IAudit.Verdict.Pass) {
            _applyPass(a, c, leaf, batchId);
        }
        emit IAudit.AuditFinalized(batchId, leaf, worker, verdict, slashed);
    }

    /// @dev FAIL: slash the worker (bounded by the config, itself bounded by the deployment's limits), share
    /// the finder part equally among the FAIL voters (dust and the rest to protocol fees), audit the worker
    /// fully from now on.
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
        uint256 n = a.seats;
        for (uint256 i; i < n; ++i) {
            Seat storage s = a.seat[i];
            if (s.vote == IAudit.Vote.Fail) {
                address validator = s.validator;
                LibPayments.creditEarnings(validator, each);
                emit IAudit.ValidatorRewarded(leaf, validator, each);
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

    /// @dev PASS: pay each PASS voter the reward out of what the audited batch paid into the validator share.
    function _applyPass(StoredAudit storage a, IAudit.AuditConfig storage c, bytes32 leaf, uint256 batchId)
        private
    {
        uint256 reward = c.passReward;
        uint256 n = a.seats;
        for (uint256 i; i < n; ++i) {
            Seat storage s = a.seat[i];
            if (s.vote == IAudit.Vote.Pass) {
                address validator = s.validator;
                uint256 paid = LibPayments.payBatchReward(batchId, validator, reward);
                emit IAudit.ValidatorRewarded(leaf, validator, paid);
            }
        }
    }

    /// @dev Slashes everyone against the verdict: revealed the other way, or committed and never revealed
    /// (for an Inconclusive audit only the latter). Their slashes go to the validator pool.
    function _slashAgainst(StoredAudit storage a, bytes32 leaf, IAudit.Verdict verdict, uint256 amount) private {
        IAudit.Vote losing = verdict == IAudit.Verdict.Fail
            ? IAudit.Vote.Pass
            : verdict == IAudit.Verdict.Pass ? IAudit.Vote.Fail : IAudit.Vote.None;
        uint256 n = a.seats;
        for (uint256 i; i < n; ++i) {
            Seat storage s = a.seat[i];
            if (s.commitment == bytes32(0)) continue;
            IAudit.Vote v = s.vote;
            if (v == IAudit.Vote.None || v == losing) _slashFalse(leaf, s.validator, amount);
        }
    }

    function _slashFalse(bytes32 leaf, address validator, uint256 amount) private {
        uint256 taken = LibBonding.slash(IBonding.Role.Validator, validator, amount);
        LibPayments.addToValidatorPool(taken);
        emit IAudit.FalseAttestationSlashed(leaf, validator, taken);
    }
}
