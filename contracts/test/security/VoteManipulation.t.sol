// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IBonding} from "../../src/interfaces/IBonding.sol";
import {IAudit} from "../../src/interfaces/IAudit.sol";
import {SecurityFixture} from "./SecurityFixture.sol";

/// @notice Threat model of contracts/README.md, attack 7: vote stuffing and vote copying by a validator
/// minority. Seats are drawn from stake checkpoints of the block before settlement and stored when the audit
/// opens, at most k commit, votes are hidden until the commit deadline, a commitment is bound to its
/// validator, and a committer who does not reveal is slashed.
contract VoteManipulationTest is SecurityFixture {
    address internal v4 = makeAddr("validator4");
    address internal v5 = makeAddr("validator5");

    function setUp() public override {
        super.setUp();
        _bondValidator(v4, VALIDATOR_MIN);
        _bondValidator(v5, VALIDATOR_MIN);
        vm.roll(block.number + 1);
    }

    function _all() internal view returns (address[] memory vs) {
        vs = new address[](5);
        vs[0] = v1;
        vs[1] = v2;
        vs[2] = v3;
        vs[3] = v4;
        vs[4] = v5;
    }

    function _tryCommit(address caller, uint256 batchId, IAudit.Receipt[] memory rs, bytes32 commitment, bytes memory err)
        internal
    {
        bytes memory sig = _signature(rs[0]);
        bytes32[] memory proof = _proof(rs, 0);
        vm.expectRevert(err);
        vm.prank(caller);
        grid.commitVote(batchId, rs[0], sig, proof, commitment);
    }

    // ---------------------------------------------------------------- stuffing

    /// Identities bonded after settlement (in the settlement block or any block before the fix, with any
    /// stake) hold no seat and cannot commit.
    function testFuzz_identitiesBondedAfterSettlement_getNoSeat(uint8 m, uint96 stake, uint8 later) public {
        m = uint8(bound(m, 1, 6));
        uint256 s = bound(stake, VALIDATOR_MIN, 1_000_000 * VALIDATOR_MIN);
        IAudit.Receipt[] memory rs = _receipts(worker, 1);
        uint256 batchId = _settle(rs);
        vm.roll(block.number + bound(later, 0, RANDOMNESS_DELAY));
        address[] memory sybils = new address[](m);
        for (uint256 i; i < m; ++i) {
            sybils[i] = makeAddr(string.concat("sybil", vm.toString(i)));
            _bondValidator(sybils[i], s);
        }
        _fix(batchId);
        bytes32 leaf = _leaf(rs[0]);
        address[] memory seats = grid.assignedValidators(batchId, leaf);
        assertEq(seats.length, VALIDATORS_PER_AUDIT);
        for (uint256 i; i < m; ++i) {
            assertFalse(_has(seats, sybils[i]));
            _tryCommit(
                sybils[i],
                batchId,
                rs,
                _commitment(sybils[i], leaf, IAudit.Vote.Fail),
                abi.encodeWithSelector(IAudit.NotAssigned.selector, sybils[i], leaf)
            );
        }
    }

    /// At most k commits: non-seated validators are refused, a seat commits once, and its operator key
    /// counts as the same seat.
    function test_atMostKCommits_perAudit() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        address[] memory seats = grid.assignedValidators(batchId, leaf);
        address op = makeAddr("seat0 operator");
        vm.prank(seats[0]);
        grid.setValidatorOperator(op);
        for (uint256 i; i < seats.length; ++i) {
            _commit(seats[i], batchId, rs, 0, IAudit.Vote.Pass);
        }
        address[] memory vs = _all();
        for (uint256 i; i < vs.length; ++i) {
            bytes memory err = _has(seats, vs[i])
                ? abi.encodeWithSelector(IAudit.AlreadyCommitted.selector, vs[i], leaf)
                : abi.encodeWithSelector(IAudit.NotAssigned.selector, vs[i], leaf);
            _tryCommit(vs[i], batchId, rs, _commitment(vs[i], leaf, IAudit.Vote.Fail), err);
        }
        _tryCommit(
            op,
            batchId,
            rs,
            _commitment(seats[0], leaf, IAudit.Vote.Fail),
            abi.encodeWithSelector(IAudit.AlreadyCommitted.selector, seats[0], leaf)
        );
        assertEq(grid.getAudit(leaf).commits, VALIDATORS_PER_AUDIT);
        assertEq(grid.getAudit(leaf).seats, VALIDATORS_PER_AUDIT);
    }

    // ---------------------------------------------------------------- copying

    /// During the commit window (any moment, fuzzed) nothing is revealed: reveals are refused and voteOf
    /// shows only that a seat committed, never its vote.
    function testFuzz_votesStayHiddenUntilTheCommitDeadline(uint64 t) public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        address[] memory seats = grid.assignedValidators(batchId, leaf);
        _commit(seats[0], batchId, rs, 0, IAudit.Vote.Fail);
        uint64 deadline = grid.batchAudit(batchId).deadline;
        vm.warp(bound(t, block.timestamp, deadline));
        (bool committed, IAudit.Vote vote) = grid.voteOf(leaf, seats[0]);
        assertTrue(committed);
        assertEq(uint8(vote), uint8(IAudit.Vote.None));
        vm.expectRevert(abi.encodeWithSelector(IAudit.RevealWindowNotOpen.selector, deadline));
        vm.prank(seats[0]);
        grid.revealVote(leaf, IAudit.Vote.Fail, _evidence(seats[0]), _salt(seats[0], leaf));
    }

    /// A seat copies another seat's commitment (public in VoteCommitted) and, once the first reveals, its
    /// vote, evidence and salt: the commitment names the first validator, so the copy cannot be revealed
    /// (CommitmentMismatch) and the copier is slashed as a silent committer. Waiting to see the reveal and
    /// committing then is too late (CommitWindowClosed).
    function test_copiedCommitment_failsToReveal_andIsSlashed() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        address[] memory seats = grid.assignedValidators(batchId, leaf);
        (address honest, address copier, address late) = (seats[0], seats[1], seats[2]);
        _commit(honest, batchId, rs, 0, IAudit.Vote.Pass);
        _commitCopy(copier, honest, batchId, rs);

        _toReveal(batchId);
        _reveal(honest, rs[0], IAudit.Vote.Pass);
        vm.expectRevert(abi.encodeWithSelector(IAudit.CommitmentMismatch.selector, copier, leaf));
        vm.prank(copier);
        grid.revealVote(leaf, IAudit.Vote.Pass, _evidence(honest), _salt(honest, leaf));
        _tryCommit(
            late,
            batchId,
            rs,
            _commitment(late, leaf, IAudit.Vote.Pass),
            abi.encodeWithSelector(IAudit.CommitWindowClosed.selector, grid.batchAudit(batchId).deadline)
        );

        _closeWindow(batchId);
        grid.finalize(leaf);
        assertEq(_validatorStake(copier), VALIDATOR_MIN - FALSE_ATTESTATION_SLASH);
        assertEq(_validatorStake(honest), VALIDATOR_MIN);
        assertEq(_validatorStake(late), VALIDATOR_MIN);
    }

    /// @dev `copier` commits exactly `honest`'s commitment.
    function _commitCopy(address copier, address honest, uint256 batchId, IAudit.Receipt[] memory rs) internal {
        bytes32 copied = _commitment(honest, _leaf(rs[0]), IAudit.Vote.Pass);
        bytes memory sig = _signature(rs[0]);
        bytes32[] memory proof = _proof(rs, 0);
        vm.prank(copier);
        grid.commitVote(batchId, rs[0], sig, proof, copied);
    }

    /// A seat that commits and never reveals is slashed whatever the verdict (Pass, Fail, Inconclusive).
    function testFuzz_silentCommitter_isSlashedWhateverTheVerdict(uint8 kind) public {
        kind = kind % 3;
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        address[] memory seats = grid.assignedValidators(batchId, leaf);
        IAudit.Vote v = kind == 1 ? IAudit.Vote.Fail : IAudit.Vote.Pass;
        for (uint256 i; i < 3; ++i) {
            _commit(seats[i], batchId, rs, 0, v);
        }
        _toReveal(batchId);
        _reveal(seats[0], rs[0], v);
        if (kind != 2) _reveal(seats[1], rs[0], v); // kind 2: one reveal, below quorum
        _closeWindow(batchId);
        grid.finalize(leaf);
        IAudit.Verdict expected =
            kind == 0 ? IAudit.Verdict.Pass : kind == 1 ? IAudit.Verdict.Fail : IAudit.Verdict.Inconclusive;
        assertEq(uint8(grid.getAudit(leaf).verdict), uint8(expected));
        assertEq(_validatorStake(seats[2]), VALIDATOR_MIN - FALSE_ATTESTATION_SLASH);
        if (kind == 2) assertEq(_validatorStake(seats[1]), VALIDATOR_MIN - FALSE_ATTESTATION_SLASH);
    }

    /// One seat of three (the minority) votes FAIL on an honest receipt: PASS stands, the worker keeps its
    /// bond, the minority voter is slashed.
    function test_minorityFail_cannotSlashTheWorker() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        address[] memory seats = grid.assignedValidators(batchId, _leaf(rs[0]));
        IAudit.Vote p = IAudit.Vote.Pass;
        _vote(batchId, rs, 0, seats, _threeVotes(IAudit.Vote.Fail, p, p));
        grid.finalize(_leaf(rs[0]));
        assertEq(_workerStake(worker), WORKER_BOND);
        assertEq(_validatorStake(seats[0]), VALIDATOR_MIN - FALSE_ATTESTATION_SLASH);
    }

    /// FINDING (found writing these tests): a stranger can bond with a seated validator's OWNER address as
    /// its operator key once that validator named a separate operator (the owner address is then unclaimed).
    /// validatorOf then resolves the owner address to the stranger, so the honest validator's reveal from its
    /// own address fails NotAssigned and, unless it switches to its operator key in time, it is slashed as
    /// silent. Safe outcome asserted: the validator can still reveal from its owner address.
    function test_strangerClaimingAValidatorsOwnerAddress_cannotBlockItsReveal() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        address seat = grid.assignedValidators(batchId, leaf)[0];
        vm.prank(seat);
        grid.setValidatorOperator(makeAddr("seat hot key"));
        _commit(seat, batchId, rs, 0, IAudit.Vote.Pass);
        // the stranger cannot take the seat's owner address as its own operator key, at bonding or later
        _fund(stranger, 2 * VALIDATOR_MIN);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IBonding.OperatorTaken.selector, seat, seat));
        grid.bondValidator(VALIDATOR_MIN, seat);
        vm.prank(stranger);
        grid.bondValidator(VALIDATOR_MIN, address(0));
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IBonding.OperatorTaken.selector, seat, seat));
        grid.setValidatorOperator(seat);
        // and the seat reveals from its owner address as it always could
        _toReveal(batchId);
        bytes32 evidence = _evidence(seat);
        bytes32 salt = _salt(seat, leaf);
        vm.prank(seat);
        grid.revealVote(leaf, IAudit.Vote.Pass, evidence, salt);
        (, IAudit.Vote vote) = grid.voteOf(leaf, seat);
        assertEq(uint8(vote), uint8(IAudit.Vote.Pass));
    }
}
