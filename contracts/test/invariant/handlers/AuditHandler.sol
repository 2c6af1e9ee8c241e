// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IGrid} from "../../../src/interfaces/IGrid.sol";
import {IAudit} from "../../../src/interfaces/IAudit.sol";
import {IBonding} from "../../../src/interfaces/IBonding.sol";
import {IPayments} from "../../../src/interfaces/IPayments.sol";
import {TestAIPG} from "../../../src/token/TestAIPG.sol";
import {ReceiptTree} from "../../utils/ReceiptTree.sol";
import {GridHandler} from "./GridHandler.sol";

/// @notice GridHandler plus the commit-reveal audit life cycle: settles batches of receipts signed by the
/// workers' operator keys (real Merkle roots, receipt numbers in the batch's range, sometimes with numbers of
/// failed jobs left without a leaf), fixes their randomness, has seated validators commit (mostly honestly,
/// sometimes against the majority, sometimes never to reveal), reveal after the commit deadline, and
/// finalizes after the reveal deadline. Its own books predict every slash, reward and fee of each verdict
/// independently of the diamond; a mismatch, a winner that lost stake, a second payment or a second
/// finalization is recorded in a ghost flag the invariants check. Workers sometimes rotate their operator key.
contract AuditHandler is GridHandler {
    IAudit.AuditConfig internal config; // fixed for the run

    /// @dev What a seated validator decided on one audit, and how far it got.
    struct Plan {
        bool committed;
        bool revealed;
        bool hides; // commits and never reveals
        IAudit.Vote vote;
        bytes32 salt;
    }

    uint256[] public auditBatches; // settled with real roots
    mapping(uint256 batchId => IAudit.Receipt[]) internal receiptsOf;
    mapping(bytes32 leaf => bytes) internal signatureOf; // by the worker's operator key at completion
    mapping(bytes32 leaf => uint256) internal leafIndex; // in its batch (receipts are unique per run)

    bytes32[] public openLeaves; // opened by a commit, not finalized yet
    bytes32[] public auditedLeaves; // every leaf ever opened
    mapping(bytes32 leaf => uint256) internal batchOfLeaf;
    mapping(bytes32 leaf => address[]) internal committersOf; // in commit order
    mapping(bytes32 leaf => mapping(address => Plan)) internal plan;

    // ghost per actor: what audits took from its bonds
    mapping(address => uint256) public ghost_slashed; // both roles
    mapping(address => uint256) public ghost_workerSlashed;
    mapping(address => uint256) public ghost_falseAttestationSlashed;

    bool public ghost_winnerLostStake;
    bool public ghost_paidTwice; // a voter's earnings moved by something other than its one reward
    bool public ghost_finalizedTwice;
    bool public ghost_auditMismatch; // slash, pool or fees differ from the handler's prediction
    bool public ghost_slashAboveConfig; // one slash took more than the config allows
    bool public ghost_unseatedCommit; // a validator not seated got a commit in
    bool public ghost_badRevealAccepted; // a reveal that does not open its commitment went through

    uint256 public ghost_commits;
    uint256 public ghost_reveals;
    uint256 public ghost_hidden; // commits never revealed when finalized
    uint256 public ghost_rotations;
    uint256[4] public ghost_verdicts; // by IAudit.Verdict

    constructor(IGrid grid_, TestAIPG aipg_, address owner_, address treasury_, uint256 count)
        GridHandler(grid_, aipg_, owner_, treasury_, count)
    {
        config = grid_.auditConfig();
    }

    function auditBatchCount() external view returns (uint256) {
        return auditBatches.length;
    }

    function openLeafCount() external view returns (uint256) {
        return openLeaves.length;
    }

    function auditedLeafCount() external view returns (uint256) {
        return auditedLeaves.length;
    }

    function batchOf(bytes32 leaf) external view returns (uint256) {
        return batchOfLeaf[leaf];
    }

    // ---------------------------------------------------------------- settle signed receipts

    /// @dev A settlement like `settle`, but its root is the Merkle root of 1–4 receipts of the credited
    /// workers, each signed by its worker's operator key and numbered in the batch's range (one in eight
    /// confidential, which no one can audit; the range sometimes longer than the leaves: failed jobs).
    function settleReceipts(uint256 gatewaySeed, uint256 seed, uint256 count) external {
        if (grid.paused()) return;
        (address gateway, IPayments.PayerDebit[] memory debits, IPayments.WorkerCredit[] memory credits) =
            _planSettlement(gatewaySeed, seed);
        if (debits.length == 0 || credits.length == 0) return;
        count = _bound(count, 1, 4);
        uint64 firstSeq = grid.nextReceiptSeq(gateway);
        uint256 gaps = seed % 3;
        IAudit.Receipt[] memory rs = new IAudit.Receipt[](count);
        for (uint256 i; i < count; ++i) {
            rs[i] = _receiptFor(
                keccak256(abi.encode(seed, ghost_batches, i)),
                gateway,
                debits[0].payer,
                credits[i % credits.length],
                firstSeq + uint64(i + (i == count - 1 ? gaps : 0))
            );
        }
        uint256 batchId = _settleAndBook(
            gateway, ReceiptTree.root(ReceiptTree.leaves(rs)), uint32(count + gaps), debits, credits
        );
        auditBatches.push(batchId);
        for (uint256 i; i < count; ++i) {
            bytes32 leaf = ReceiptTree.leaf(rs[i]);
            receiptsOf[batchId].push(rs[i]);
            leafIndex[leaf] = i;
            signatureOf[leaf] = _sign(rs[i]);
        }
        calls[this.settleReceipts.selector]++;
    }

    function _receiptFor(bytes32 h, address gateway, address payer, IPayments.WorkerCredit memory credit, uint64 seq)
        internal
        view
        returns (IAudit.Receipt memory)
    {
        return IAudit.Receipt({
            jobId: h,
            gateway: gateway,
            payer: payer,
            worker: credit.worker,
            modelId: keccak256("model"),
            requestHash: keccak256(abi.encode(h, "request")),
            outputHash: keccak256(abi.encode(h, "output")),
            inputUnits: uint64(uint256(h) % 4096),
            outputUnits: uint64(uint256(h) % 8192),
            fee: credit.gross,
            completedAt: uint64(block.timestamp),
            confidential: uint256(h) % 8 == 0,
            seq: seq
        });
    }

    function _sign(IAudit.Receipt memory r) internal view returns (bytes memory) {
        (uint8 v, bytes32 rr, bytes32 ss) = vm.sign(workerKey[r.worker], grid.receiptDigest(r));
        return abi.encodePacked(rr, ss, v);
    }

    /// @dev A bonded worker names a fresh operator key. One second passes first, so receipts signed in this
    /// second (by the key of this second) stay verifiable.
    function rotateWorkerKey(uint256 actorSeed, uint256 keySeed) external {
        address who;
        for (uint256 k; k < actors.length; ++k) {
            IBonding.BondInfo memory b = grid.workerBond(_nth(actorSeed, k));
            if (b.amount + b.unbonding != 0) {
                who = _nth(actorSeed, k);
                break;
            }
        }
        if (who == address(0)) return;
        uint256 key = _bound(uint256(keccak256(abi.encode("operator", keySeed, ghost_rotations))), 1, 1e70);
        vm.warp(block.timestamp + 1);
        vm.prank(who);
        grid.setWorkerOperator(vm.addr(key));
        workerKey[who] = key;
        ghost_rotations++;
        calls[this.rotateWorkerKey.selector]++;
    }

    // ---------------------------------------------------------------- randomness

    /// @dev Fixes the first unfixed batch from `seed` on, mining to its ready block first (sometimes far
    /// beyond it, past the 256-block window).
    function fixRandomness(uint256 seed) external {
        if (_fixNext(seed)) calls[this.fixRandomness.selector]++;
    }

    function _fixNext(uint256 seed) internal returns (bool) {
        uint256 n = auditBatches.length;
        for (uint256 k; k < n; ++k) {
            uint256 batchId = auditBatches[(seed % n + k) % n];
            if (grid.batchAudit(batchId).randomness != bytes32(0)) continue;
            uint256 ready = uint256(grid.getBatch(batchId).settledBlock) + config.randomnessDelay + 1;
            if (seed % 16 == 0) ready += 300;
            if (block.number < ready) vm.roll(ready);
            grid.fixRandomness(batchId);
            return true;
        }
        return false;
    }

    // ---------------------------------------------------------------- commits

    /// @dev One seated validator that has not committed yet commits on an audited receipt of a batch whose
    /// commit window is open; validators mostly vote the truth, sometimes not, and sometimes never reveal,
    /// so every verdict comes up. When no window is open it first fixes a batch that waits for randomness.
    function commit(uint256 batchSeed, uint256 leafSeed, uint256 validatorSeed, uint256 voteSeed) external {
        if (_commit(batchSeed, leafSeed, validatorSeed, voteSeed)) return;
        if (_fixNext(batchSeed)) {
            calls[this.fixRandomness.selector]++;
            _commit(batchSeed, leafSeed, validatorSeed, voteSeed);
        }
    }

    /// @dev Another commit on an open audit first (so audits reach their quorum), else a first commit.
    function _commit(uint256 batchSeed, uint256 leafSeed, uint256 validatorSeed, uint256 voteSeed)
        internal
        returns (bool)
    {
        uint256 open = openLeaves.length;
        for (uint256 k; k < open; ++k) {
            bytes32 leaf = openLeaves[(leafSeed % open + k) % open];
            uint256 batchId = batchOfLeaf[leaf];
            // forge-lint: disable-next-line(block-timestamp)
            if (block.timestamp > grid.batchAudit(batchId).deadline) continue;
            if (_tryCommit(batchId, leafIndex[leaf], validatorSeed, voteSeed)) return true;
        }
        uint256 n = auditBatches.length;
        for (uint256 k; k < n; ++k) {
            uint256 batchId = auditBatches[(batchSeed % n + k) % n];
            IAudit.BatchAudit memory b = grid.batchAudit(batchId);
            // forge-lint: disable-next-line(block-timestamp)
            if (b.randomness == bytes32(0) || block.timestamp > b.deadline) continue;
            IAudit.Receipt[] storage rs = receiptsOf[batchId];
            for (uint256 j; j < rs.length; ++j) {
                uint256 index = (leafSeed % rs.length + j) % rs.length;
                if (_tryCommit(batchId, index, validatorSeed, voteSeed)) return true;
            }
        }
        return false;
    }

    function _tryCommit(uint256 batchId, uint256 index, uint256 validatorSeed, uint256 voteSeed)
        internal
        returns (bool)
    {
        IAudit.Receipt memory r = receiptsOf[batchId][index];
        bytes32 leaf = ReceiptTree.leaf(r);
        if (r.confidential || !grid.isAudited(batchId, leaf, r.worker)) return false;
        IAudit.AuditInfo memory a = grid.getAudit(leaf);
        if (a.verdict != IAudit.Verdict.None || (a.batchId != 0 && a.batchId != batchId)) return false;
        address[] memory seats = grid.assignedValidators(batchId, leaf);
        for (uint256 i; i < seats.length; ++i) {
            address v = seats[(validatorSeed % seats.length + i) % seats.length];
            if (plan[leaf][v].committed) continue;
            if (voteSeed % 7 == 0) _tryUnseated(batchId, r, leaf, seats, voteSeed);
            _commitAs(v, batchId, index, voteSeed);
            if (a.batchId == 0) {
                openLeaves.push(leaf);
                auditedLeaves.push(leaf);
                batchOfLeaf[leaf] = batchId;
            }
            return true;
        }
        return false;
    }

    /// @dev `v` commits its vote on receipt `index` of the batch and the handler books its plan.
    function _commitAs(address v, uint256 batchId, uint256 index, uint256 voteSeed) internal {
        bytes32 leaf = ReceiptTree.leaf(receiptsOf[batchId][index]);
        // each receipt is good or bad (one in two); a validator sees it right four times in five
        bool bad = uint256(leaf) % 2 == 0;
        if (voteSeed % 5 == 0) bad = !bad;
        IAudit.Vote vote = bad ? IAudit.Vote.Fail : IAudit.Vote.Pass;
        bytes32 salt = keccak256(abi.encode("salt", leaf, v, voteSeed));
        bytes32 commitment = grid.voteCommitment(leaf, v, vote, _evidence(leaf, v), salt);
        bytes memory signature = signatureOf[leaf];
        bytes32[] memory proof = _proof(batchId, index);
        vm.prank(v);
        grid.commitVote(batchId, receiptsOf[batchId][index], signature, proof, commitment);
        committersOf[leaf].push(v);
        plan[leaf][v] =
            Plan({committed: true, revealed: false, hides: (voteSeed >> 8) % 6 == 0, vote: vote, salt: salt});
        ghost_commits++;
        calls[this.commit.selector]++;
    }

    /// @dev An actor that is not seated tries to commit: it must be refused.
    function _tryUnseated(uint256 batchId, IAudit.Receipt memory r, bytes32 leaf, address[] memory seats, uint256 seed)
        internal
    {
        address intruder = _actor(seed >> 16);
        for (uint256 i; i < seats.length; ++i) {
            if (seats[i] == intruder) return;
        }
        bytes32 commitment = grid.voteCommitment(leaf, intruder, IAudit.Vote.Fail, bytes32(0), bytes32(seed));
        bytes memory data = abi.encodeCall(
            IAudit.commitVote, (batchId, r, signatureOf[leaf], _proof(batchId, leafIndex[leaf]), commitment)
        );
        vm.prank(intruder);
        (bool ok,) = address(grid).call(data);
        if (ok) ghost_unseatedCommit = true;
    }

    function _evidence(bytes32 leaf, address v) internal pure returns (bytes32) {
        return keccak256(abi.encode("evidence", leaf, v));
    }

    function _proof(uint256 batchId, uint256 index) internal view returns (bytes32[] memory) {
        IAudit.Receipt[] storage stored = receiptsOf[batchId];
        IAudit.Receipt[] memory rs = new IAudit.Receipt[](stored.length);
        for (uint256 i; i < rs.length; ++i) {
            rs[i] = stored[i];
        }
        return ReceiptTree.proof(ReceiptTree.leaves(rs), index);
    }

    // ---------------------------------------------------------------- reveals

    /// @dev One committed vote that its validator means to reveal is revealed, on the first open audit from
    /// `seed` on whose reveal window is open (warping past its commit deadline first, three times in four).
    /// Now and then the validator first tries to reveal the other vote, which must be refused.
    function reveal(uint256 seed) external {
        uint256 n = openLeaves.length;
        for (uint256 k; k < n; ++k) {
            bytes32 leaf = openLeaves[(seed % n + k) % n];
            IAudit.BatchAudit memory b = grid.batchAudit(batchOfLeaf[leaf]);
            // forge-lint: disable-next-line(block-timestamp)
            if (block.timestamp > b.revealDeadline) continue;
            address[] storage committers = committersOf[leaf];
            for (uint256 i; i < committers.length; ++i) {
                address v = committers[i];
                Plan storage p = plan[leaf][v];
                if (p.revealed || p.hides) continue;
                // forge-lint: disable-next-line(block-timestamp)
                if (block.timestamp <= b.deadline) {
                    if (seed % 4 == 3) break;
                    vm.warp(uint256(b.deadline) + 1);
                }
                if (seed % 5 == 0) _tryWrongReveal(leaf, v, p);
                vm.prank(v);
                grid.revealVote(leaf, p.vote, _evidence(leaf, v), p.salt);
                p.revealed = true;
                ghost_reveals++;
                calls[this.reveal.selector]++;
                return;
            }
        }
    }

    function _tryWrongReveal(bytes32 leaf, address v, Plan storage p) internal {
        IAudit.Vote other = p.vote == IAudit.Vote.Pass ? IAudit.Vote.Fail : IAudit.Vote.Pass;
        vm.prank(v);
        (bool ok,) =
            address(grid).call(abi.encodeCall(IAudit.revealVote, (leaf, other, _evidence(leaf, v), p.salt)));
        if (ok) ghost_badRevealAccepted = true;
    }

    // ---------------------------------------------------------------- verdicts

    struct Before {
        uint256[] stake;
        uint256[] earned;
        uint256 workerStake;
        uint256 pool;
        uint256 fees;
        uint256 rewardLeft;
    }

    /// @dev Finalizes the first open audit from `seed` on whose reveal window has closed (every other time
    /// warping past a reveal deadline first), checks every amount against the handler's own prediction,
    /// books it in the ghosts, then tries to finalize it again.
    function finalize(uint256 seed) external {
        uint256 n = openLeaves.length;
        if (n == 0) return;
        uint64 revealDeadline = grid.batchAudit(batchOfLeaf[openLeaves[seed % n]]).revealDeadline;
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp <= revealDeadline && seed % 2 == 0) vm.warp(uint256(revealDeadline) + 1);
        for (uint256 k; k < n; ++k) {
            uint256 i = (seed % n + k) % n;
            bytes32 leaf = openLeaves[i];
            // forge-lint: disable-next-line(block-timestamp)
            if (block.timestamp <= grid.batchAudit(batchOfLeaf[leaf]).revealDeadline) continue;
            openLeaves[i] = openLeaves[n - 1];
            openLeaves.pop();
            _finalize(leaf, grid.getAudit(leaf).worker);
            calls[this.finalize.selector]++;
            return;
        }
    }

    function _finalize(bytes32 leaf, address worker) internal {
        address[] storage committers = committersOf[leaf];
        uint256 batchId = batchOfLeaf[leaf];
        Before memory s = _before(committers, worker, batchId);
        grid.finalize(leaf);

        (uint256 nPass, uint256 nFail) = _count(leaf, committers);
        IAudit.Verdict verdict = nPass + nFail < config.quorum || nPass == nFail
            ? IAudit.Verdict.Inconclusive
            : (nFail > nPass ? IAudit.Verdict.Fail : IAudit.Verdict.Pass);
        if (grid.getAudit(leaf).verdict != verdict) ghost_auditMismatch = true;
        ghost_verdicts[uint8(verdict)]++;

        // against the verdict (revealed the other way) or silent after committing: slashed into the pool
        IAudit.Vote losing = verdict == IAudit.Verdict.Fail
            ? IAudit.Vote.Pass
            : verdict == IAudit.Verdict.Pass ? IAudit.Vote.Fail : IAudit.Vote.None;
        uint256 toPool;
        for (uint256 i; i < committers.length; ++i) {
            Plan storage p = plan[leaf][committers[i]];
            if (!p.revealed) ghost_hidden++;
            if (!p.revealed || p.vote == losing) toPool += _bookFalseAttestation(committers[i], s, i);
            else if (verdict == IAudit.Verdict.Inconclusive) _bookUntouched(committers[i], s, i);
        }
        ghost_validatorPool += toPool;

        if (verdict == IAudit.Verdict.Fail) _bookFail(leaf, worker, committers, s, nFail);
        else if (verdict == IAudit.Verdict.Pass) _bookPass(leaf, batchId, committers, s, toPool);
        else if (_workerStake(worker) != s.workerStake) ghost_auditMismatch = true;
        if (grid.protocolFees() != ghost_protocolFees || grid.validatorPool() != ghost_validatorPool) {
            ghost_auditMismatch = true;
        }

        (bool again,) = address(grid).call(abi.encodeCall(IAudit.finalize, (leaf)));
        if (again) ghost_finalizedTwice = true;
    }

    function _before(address[] storage committers, address worker, uint256 batchId)
        internal
        view
        returns (Before memory s)
    {
        s.stake = new uint256[](committers.length);
        s.earned = new uint256[](committers.length);
        for (uint256 i; i < committers.length; ++i) {
            s.stake[i] = _validatorStake(committers[i]);
            s.earned[i] = grid.earningsOf(committers[i]);
        }
        s.workerStake = _workerStake(worker);
        s.pool = grid.validatorPool();
        s.fees = grid.protocolFees();
        s.rewardLeft = grid.getBatch(batchId).rewardLeft;
    }

    /// @dev Revealed votes only.
    function _count(bytes32 leaf, address[] storage committers)
        internal
        view
        returns (uint256 nPass, uint256 nFail)
    {
        for (uint256 i; i < committers.length; ++i) {
            Plan storage p = plan[leaf][committers[i]];
            if (!p.revealed) continue;
            if (p.vote == IAudit.Vote.Pass) ++nPass;
            else ++nFail;
        }
    }

    function _validatorStake(address v) internal view returns (uint256) {
        return grid.validatorBond(v).amount + grid.validatorBond(v).unbonding;
    }

    function _workerStake(address w) internal view returns (uint256) {
        return grid.workerBond(w).amount + grid.workerBond(w).unbonding;
    }

    function _bookFail(bytes32 leaf, address worker, address[] storage committers, Before memory s, uint256 nFail)
        internal
    {
        uint256 slashed = config.workerSlashAmount < s.workerStake ? config.workerSlashAmount : s.workerStake;
        if (slashed > config.workerSlashAmount) ghost_slashAboveConfig = true;
        if (s.workerStake - _workerStake(worker) != slashed) ghost_auditMismatch = true;
        ghost_workerBonded -= slashed;
        ghost_workerStake[worker] -= slashed;
        ghost_slashed[worker] += slashed;
        ghost_workerSlashed[worker] += slashed;

        uint256 each = slashed * config.finderShareBps / BPS / nFail;
        for (uint256 i; i < committers.length; ++i) {
            Plan storage p = plan[leaf][committers[i]];
            if (p.revealed && p.vote == IAudit.Vote.Fail) _bookReward(committers[i], each, s, i);
        }
        ghost_protocolFees += slashed - each * nFail;
    }

    /// @dev Each PASS revealer is paid, in seat order, min(passReward, what is left of the batch's share, pool).
    function _bookPass(bytes32 leaf, uint256 batchId, address[] storage committers, Before memory s, uint256 toPool)
        internal
    {
        address[] memory seats = grid.assignedValidators(batchId, leaf);
        uint256 left = s.rewardLeft;
        uint256 pool = s.pool + toPool;
        uint256 paidOut;
        for (uint256 j; j < seats.length; ++j) {
            Plan storage p = plan[leaf][seats[j]];
            if (!p.revealed || p.vote != IAudit.Vote.Pass) continue;
            uint256 paid = config.passReward < left ? config.passReward : left;
            if (paid > pool) paid = pool;
            left -= paid;
            pool -= paid;
            paidOut += paid;
            _bookReward(seats[j], paid, s, _indexOf(committers, seats[j]));
        }
        ghost_validatorPool -= paidOut;
        ghost_batchRewardsPaid[batchId] += paidOut;
        if (grid.getBatch(batchId).rewardLeft != left) ghost_auditMismatch = true;
    }

    function _indexOf(address[] storage list, address who) internal view returns (uint256 i) {
        while (list[i] != who) ++i;
    }

    /// @dev A revealer of an Inconclusive audit: nothing moves.
    function _bookUntouched(address v, Before memory s, uint256 i) internal {
        if (_validatorStake(v) != s.stake[i]) ghost_auditMismatch = true;
        if (grid.earningsOf(v) != s.earned[i]) ghost_paidTwice = true;
    }

    /// @dev A voter on the winning side: its stake must be intact and its earnings up by exactly `amount`.
    function _bookReward(address v, uint256 amount, Before memory s, uint256 i) internal {
        if (_validatorStake(v) < s.stake[i]) ghost_winnerLostStake = true;
        if (grid.earningsOf(v) != s.earned[i] + amount) ghost_paidTwice = true;
        ghost_earned[v] += amount;
        ghost_earnings += amount;
    }

    /// @dev Against the verdict or silent after committing: slashed min(falseAttestationSlash, its bond), paid
    /// nothing.
    function _bookFalseAttestation(address v, Before memory s, uint256 i) internal returns (uint256 taken) {
        taken = config.falseAttestationSlash < s.stake[i] ? config.falseAttestationSlash : s.stake[i];
        uint256 lost = s.stake[i] - _validatorStake(v);
        if (lost != taken) ghost_auditMismatch = true;
        if (lost > config.falseAttestationSlash) ghost_slashAboveConfig = true;
        if (grid.earningsOf(v) != s.earned[i]) ghost_paidTwice = true;
        ghost_validatorBonded -= taken;
        ghost_validatorStake[v] -= taken;
        ghost_slashed[v] += taken;
        ghost_falseAttestationSlashed[v] += taken;
    }
}
