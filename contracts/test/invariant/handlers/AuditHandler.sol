// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IGrid} from "../../../src/interfaces/IGrid.sol";
import {IAudit} from "../../../src/interfaces/IAudit.sol";
import {IPayments} from "../../../src/interfaces/IPayments.sol";
import {TestAIPG} from "../../../src/token/TestAIPG.sol";
import {ReceiptTree} from "../../utils/ReceiptTree.sol";
import {GridHandler} from "./GridHandler.sol";

/// @notice GridHandler plus the audit life cycle: settles batches of real receipts (real Merkle roots), fixes
/// their randomness, has assigned validators attest PASS or FAIL, warps and finalizes. Its own books predict
/// every slash, reward and fee of each verdict independently of the diamond; a mismatch, a winner that lost
/// stake, a second payment or a second finalization is recorded in a ghost flag the invariants check.
contract AuditHandler is GridHandler {
    IAudit.AuditConfig internal config; // fixed for the run

    uint256[] public auditBatches; // settled with real roots
    mapping(uint256 batchId => IAudit.Receipt[]) internal receiptsOf;
    mapping(bytes32 leaf => uint256) internal leafIndex; // in its batch (receipts are unique per run)

    bytes32[] public openLeaves; // attested at least once, not finalized yet
    mapping(bytes32 leaf => address[]) internal votersOf; // in attestation order
    mapping(bytes32 leaf => mapping(address => IAudit.Vote)) internal voteBy;

    // ghost per actor: what audits took from its bonds
    mapping(address => uint256) public ghost_slashed; // both roles
    mapping(address => uint256) public ghost_workerSlashed;
    mapping(address => uint256) public ghost_falseAttestationSlashed;

    bool public ghost_winnerLostStake;
    bool public ghost_paidTwice; // a voter's earnings moved by something other than its one reward
    bool public ghost_finalizedTwice;
    bool public ghost_auditMismatch; // slash, pool or fees differ from the handler's prediction

    uint256 public ghost_attestations;
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

    // ---------------------------------------------------------------- settle real receipts

    /// @dev A settlement like `settle`, but its root is the Merkle root of 1–4 receipts of the credited
    /// workers (one in eight confidential, which no one can audit).
    function settleReceipts(uint256 gatewaySeed, uint256 seed, uint256 count) external {
        if (grid.paused()) return;
        (address gateway, IPayments.PayerDebit[] memory debits, IPayments.WorkerCredit[] memory credits) =
            _planSettlement(gatewaySeed, seed);
        if (debits.length == 0 || credits.length == 0) return;
        count = _bound(count, 1, 4);
        IAudit.Receipt[] memory rs = new IAudit.Receipt[](count);
        for (uint256 i; i < count; ++i) {
            bytes32 h = keccak256(abi.encode(seed, ghost_batches, i));
            rs[i] = IAudit.Receipt({
                jobId: h,
                gateway: gateway,
                payer: debits[0].payer,
                worker: credits[i % credits.length].worker,
                modelId: keccak256("model"),
                requestHash: keccak256(abi.encode(h, "request")),
                outputHash: keccak256(abi.encode(h, "output")),
                inputUnits: uint64(uint256(h) % 4096),
                outputUnits: uint64(uint256(h) % 8192),
                fee: credits[i % credits.length].gross,
                completedAt: uint64(block.timestamp),
                confidential: uint256(h) % 8 == 0
            });
        }
        uint256 batchId =
            _settleAndBook(gateway, ReceiptTree.root(ReceiptTree.leaves(rs)), uint32(count), debits, credits);
        auditBatches.push(batchId);
        for (uint256 i; i < count; ++i) {
            receiptsOf[batchId].push(rs[i]);
            leafIndex[ReceiptTree.leaf(rs[i])] = i;
        }
        calls[this.settleReceipts.selector]++;
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

    // ---------------------------------------------------------------- attestations

    /// @dev One assigned validator that has not voted yet attests on an audited receipt of a batch whose
    /// window is open; validators mostly agree, sometimes not, so every verdict comes up.
    /// When no window is open it first fixes a batch that waits for its randomness, as validators do.
    function attest(uint256 batchSeed, uint256 leafSeed, uint256 validatorSeed, uint256 voteSeed) external {
        if (_attest(batchSeed, leafSeed, validatorSeed, voteSeed)) return;
        if (_fixNext(batchSeed)) {
            calls[this.fixRandomness.selector]++;
            _attest(batchSeed, leafSeed, validatorSeed, voteSeed);
        }
    }

    /// @dev Another vote on an open audit first (so audits reach their quorum), else a first vote.
    function _attest(uint256 batchSeed, uint256 leafSeed, uint256 validatorSeed, uint256 voteSeed)
        internal
        returns (bool)
    {
        uint256 open = openLeaves.length;
        for (uint256 k; k < open; ++k) {
            bytes32 leaf = openLeaves[(leafSeed % open + k) % open];
            uint256 batchId = grid.getAudit(leaf).batchId;
            // forge-lint: disable-next-line(block-timestamp)
            if (block.timestamp > grid.batchAudit(batchId).deadline) continue;
            if (_tryAttest(batchId, leafIndex[leaf], validatorSeed, voteSeed)) return true;
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
                if (_tryAttest(batchId, index, validatorSeed, voteSeed)) return true;
            }
        }
        return false;
    }

    function _tryAttest(uint256 batchId, uint256 index, uint256 validatorSeed, uint256 voteSeed)
        internal
        returns (bool)
    {
        IAudit.Receipt memory r = receiptsOf[batchId][index];
        bytes32 leaf = ReceiptTree.leaf(r);
        if (r.confidential || !grid.isAudited(batchId, leaf, r.worker)) return false;
        IAudit.AuditInfo memory a = grid.getAudit(leaf);
        if (a.verdict != IAudit.Verdict.None || (a.batchId != 0 && a.batchId != batchId)) return false;
        address[] memory assigned = grid.assignedValidators(batchId, leaf);
        for (uint256 i; i < assigned.length; ++i) {
            address v = assigned[(validatorSeed % assigned.length + i) % assigned.length];
            if (grid.voteOf(leaf, v) != IAudit.Vote.None) continue;
            // each receipt is good or bad (one in two); a validator sees it right three times in four
            bool bad = uint256(leaf) % 2 == 0;
            if (voteSeed % 4 == 0) bad = !bad;
            _vote(batchId, index, v, bad ? IAudit.Vote.Fail : IAudit.Vote.Pass);
            return true;
        }
        return false;
    }

    function _vote(uint256 batchId, uint256 index, address v, IAudit.Vote vote) internal {
        IAudit.Receipt memory r = receiptsOf[batchId][index];
        bytes32 leaf = ReceiptTree.leaf(r);
        bytes32[] memory proof = _proof(batchId, index);
        vm.prank(v);
        grid.attest(batchId, r, proof, vote, keccak256(abi.encode(leaf, v)));
        if (votersOf[leaf].length == 0) openLeaves.push(leaf);
        votersOf[leaf].push(v);
        voteBy[leaf][v] = vote;
        ghost_attestations++;
        calls[this.attest.selector]++;
    }

    function _proof(uint256 batchId, uint256 index) internal view returns (bytes32[] memory) {
        IAudit.Receipt[] storage stored = receiptsOf[batchId];
        IAudit.Receipt[] memory rs = new IAudit.Receipt[](stored.length);
        for (uint256 i; i < rs.length; ++i) {
            rs[i] = stored[i];
        }
        return ReceiptTree.proof(ReceiptTree.leaves(rs), index);
    }

    // ---------------------------------------------------------------- verdicts

    struct Before {
        uint256[] stake;
        uint256[] earned;
        uint256 workerStake;
        uint256 pool;
        uint256 fees;
    }

    /// @dev Finalizes the first open audit from `seed` on whose window has closed (one time in eight warping past
    /// a window first), checks every amount against the handler's own prediction,
    /// books it in the ghosts, then tries to finalize it again.
    function finalize(uint256 seed) external {
        uint256 n = openLeaves.length;
        if (n == 0) return;
        uint64 deadline = grid.getAudit(openLeaves[seed % n]).deadline;
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp <= deadline && seed % 8 == 0) vm.warp(uint256(deadline) + 1);
        for (uint256 k; k < n; ++k) {
            uint256 i = (seed % n + k) % n;
            bytes32 leaf = openLeaves[i];
            IAudit.AuditInfo memory a = grid.getAudit(leaf);
            // forge-lint: disable-next-line(block-timestamp)
            if (block.timestamp <= a.deadline) continue;
            openLeaves[i] = openLeaves[n - 1];
            openLeaves.pop();
            _finalize(leaf, a.worker);
            calls[this.finalize.selector]++;
            return;
        }
    }

    function _finalize(bytes32 leaf, address worker) internal {
        address[] storage voters = votersOf[leaf];
        Before memory s = _before(voters, worker);
        grid.finalize(leaf);

        (uint256 nPass, uint256 nFail) = _count(leaf, voters);
        IAudit.Verdict verdict = nPass + nFail < config.quorum || nPass == nFail
            ? IAudit.Verdict.Inconclusive
            : (nFail > nPass ? IAudit.Verdict.Fail : IAudit.Verdict.Pass);
        if (grid.getAudit(leaf).verdict != verdict) ghost_auditMismatch = true;
        ghost_verdicts[uint8(verdict)]++;

        if (verdict == IAudit.Verdict.Fail) _bookFail(leaf, worker, voters, s, nFail);
        else if (verdict == IAudit.Verdict.Pass) _bookPass(leaf, voters, s);
        else _bookInconclusive(voters, s);
        if (grid.protocolFees() != ghost_protocolFees || grid.validatorPool() != ghost_validatorPool) {
            ghost_auditMismatch = true;
        }

        (bool again,) = address(grid).call(abi.encodeCall(IAudit.finalize, (leaf)));
        if (again) ghost_finalizedTwice = true;
    }

    function _before(address[] storage voters, address worker) internal view returns (Before memory s) {
        s.stake = new uint256[](voters.length);
        s.earned = new uint256[](voters.length);
        for (uint256 i; i < voters.length; ++i) {
            s.stake[i] = _validatorStake(voters[i]);
            s.earned[i] = grid.earningsOf(voters[i]);
        }
        s.workerStake = grid.workerBond(worker).amount + grid.workerBond(worker).unbonding;
        s.pool = grid.validatorPool();
        s.fees = grid.protocolFees();
    }

    function _count(bytes32 leaf, address[] storage voters)
        internal
        view
        returns (uint256 nPass, uint256 nFail)
    {
        for (uint256 i; i < voters.length; ++i) {
            if (voteBy[leaf][voters[i]] == IAudit.Vote.Pass) ++nPass;
            else ++nFail;
        }
    }

    function _validatorStake(address v) internal view returns (uint256) {
        return grid.validatorBond(v).amount + grid.validatorBond(v).unbonding;
    }

    function _bookFail(bytes32 leaf, address worker, address[] storage voters, Before memory s, uint256 nFail)
        internal
    {
        uint256 slashed = config.workerSlashAmount < s.workerStake ? config.workerSlashAmount : s.workerStake;
        uint256 workerNow = grid.workerBond(worker).amount + grid.workerBond(worker).unbonding;
        if (s.workerStake - workerNow != slashed) ghost_auditMismatch = true;
        ghost_workerBonded -= slashed;
        ghost_slashed[worker] += slashed;
        ghost_workerSlashed[worker] += slashed;

        uint256 each = slashed * config.finderShareBps / BPS / nFail;
        for (uint256 i; i < voters.length; ++i) {
            address v = voters[i];
            if (voteBy[leaf][v] == IAudit.Vote.Fail) {
                _bookReward(v, each, s, i);
            } else {
                ghost_validatorPool += _bookFalseAttestation(v, s, i);
            }
        }
        ghost_protocolFees += slashed - each * nFail;
    }

    function _bookPass(bytes32 leaf, address[] storage voters, Before memory s) internal {
        uint256 toPool;
        for (uint256 i; i < voters.length; ++i) {
            if (voteBy[leaf][voters[i]] == IAudit.Vote.Fail) {
                toPool += _bookFalseAttestation(voters[i], s, i);
            }
        }
        // the false attestations go into the pool first, then each PASS voter is paid from it in vote order
        uint256 pool = s.pool + toPool;
        uint256 paidOut;
        for (uint256 i; i < voters.length; ++i) {
            if (voteBy[leaf][voters[i]] != IAudit.Vote.Pass) continue;
            uint256 paid = config.passReward < pool ? config.passReward : pool;
            pool -= paid;
            paidOut += paid;
            _bookReward(voters[i], paid, s, i);
        }
        ghost_validatorPool = ghost_validatorPool + toPool - paidOut;
    }

    function _bookInconclusive(address[] storage voters, Before memory s) internal {
        for (uint256 i; i < voters.length; ++i) {
            if (_validatorStake(voters[i]) != s.stake[i]) ghost_auditMismatch = true;
            if (grid.earningsOf(voters[i]) != s.earned[i]) ghost_paidTwice = true;
        }
    }

    /// @dev A voter on the winning side: its stake must be intact and its earnings up by exactly `amount`.
    function _bookReward(address v, uint256 amount, Before memory s, uint256 i) internal {
        if (_validatorStake(v) < s.stake[i]) ghost_winnerLostStake = true;
        if (grid.earningsOf(v) != s.earned[i] + amount) ghost_paidTwice = true;
        ghost_earned[v] += amount;
        ghost_earnings += amount;
    }

    /// @dev A voter on the losing side: slashed min(falseAttestationSlash, its bond), paid nothing.
    function _bookFalseAttestation(address v, Before memory s, uint256 i) internal returns (uint256 taken) {
        taken = config.falseAttestationSlash < s.stake[i] ? config.falseAttestationSlash : s.stake[i];
        if (s.stake[i] - _validatorStake(v) != taken) ghost_auditMismatch = true;
        if (grid.earningsOf(v) != s.earned[i]) ghost_paidTwice = true;
        ghost_validatorBonded -= taken;
        ghost_slashed[v] += taken;
        ghost_falseAttestationSlashed[v] += taken;
    }
}
