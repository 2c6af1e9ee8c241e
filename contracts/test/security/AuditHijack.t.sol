// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAudit} from "../../src/interfaces/IAudit.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {ReceiptTree} from "../utils/ReceiptTree.sol";
import {SecurityFixture} from "./SecurityFixture.sol";

/// @notice Threat model of contracts/README.md, attack 3: re-settling a genuine receipt in copy batches until
/// a draw seats the attacker's validators. A receipt's `seq` (signed by the worker) lies in exactly one
/// batch's range of its own gateway, so only that batch can audit it, and its seats are fixed from the stakes
/// of the block before settlement.
contract AuditHijackTest is SecurityFixture {
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

    /// @dev Every validator tries to commit on `rs[index]` naming `batchId`: each reverts with `err`.
    function _nobodyCommits(uint256 batchId, IAudit.Receipt[] memory rs, uint256 index, bytes memory err) internal {
        address[] memory vs = _all();
        bytes32 leaf = _leaf(rs[index]);
        bytes memory sig = _signature(rs[index]);
        bytes32[] memory proof = _proof(rs, index);
        for (uint256 i; i < vs.length; ++i) {
            bytes32 commitment = _commitment(vs[i], leaf, IAudit.Vote.Fail);
            vm.expectRevert(err);
            vm.prank(vs[i]);
            grid.commitVote(batchId, rs[index], sig, proof, commitment);
        }
    }

    /// The same gateway re-settles a genuine receipt in any number of copy batches (each its next range,
    /// of any length): none of them can audit it; the original batch's seats still can.
    function testFuzz_copyBatches_sameGateway_cannotAuditTheReceipt(uint8 copies, uint32 count) public {
        copies = uint8(bound(copies, 1, 4));
        count = uint32(bound(count, 2, type(uint32).max / 8));
        IAudit.Receipt[] memory original = _receipts(worker, 1);
        uint256 originalId = _settle(original);
        IAudit.Receipt memory genuine = original[0];

        uint256[] memory copyIds = new uint256[](copies);
        IAudit.Receipt[][] memory copySets = new IAudit.Receipt[][](copies);
        for (uint256 c; c < copies; ++c) {
            uint64 first = grid.nextReceiptSeq(gateway);
            copySets[c] = _two(genuine, _receiptAt(gateway, worker, first, 1e18 + c));
            copyIds[c] = _settleRaw(gateway, copySets[c], first, count, worker, 1e18);
            assertGt(first, genuine.seq);
        }
        _fix(originalId);
        for (uint256 c; c < copies; ++c) {
            _fix(copyIds[c]);
            _nobodyCommits(
                copyIds[c],
                copySets[c],
                0,
                abi.encodeWithSelector(IAudit.ReceiptNotInBatch.selector, copyIds[c], gateway, genuine.seq)
            );
        }
        // only the original batch's seats vote, and the copies stay closed after it opened
        address[] memory seats = grid.assignedValidators(originalId, _leaf(genuine));
        for (uint256 i; i < seats.length; ++i) {
            _commit(seats[i], originalId, original, 0, IAudit.Vote.Pass);
        }
        assertEq(grid.getAudit(_leaf(genuine)).batchId, originalId);
        assertEq(grid.getAudit(_leaf(genuine)).commits, seats.length);
        _nobodyCommits(
            copyIds[0],
            copySets[0],
            0,
            abi.encodeWithSelector(IAudit.ReceiptNotInBatch.selector, copyIds[0], gateway, genuine.seq)
        );
    }

    /// The gateway cannot rewind its numbering to put a settled receipt number in a second batch.
    function testFuzz_copyBatch_rewoundFirstSeq_revertsSequenceMismatch(uint64 firstSeq, uint32 count) public {
        IAudit.Receipt[] memory original = _receipts(worker, 3);
        _settle(original);
        uint64 next = grid.nextReceiptSeq(gateway);
        vm.assume(firstSeq != next);
        count = uint32(bound(count, 1, type(uint32).max));
        uint256 depositBefore = grid.depositOf(payer).balance;
        // a new root (the receipts plus one), so only the numbering can stop it
        IAudit.Receipt[] memory copy = new IAudit.Receipt[](4);
        for (uint256 i; i < 3; ++i) {
            copy[i] = original[i];
        }
        copy[3] = _receiptAt(gateway, worker, next, 5e18);
        vm.expectRevert(abi.encodeWithSelector(IPayments.SequenceMismatch.selector, gateway, next, firstSeq));
        this.settleAs(gateway, copy, firstSeq, count);
        assertEq(grid.depositOf(payer).balance, depositBefore);
    }

    /// @dev External so expectRevert sees exactly the settle call.
    function settleAs(address gw, IAudit.Receipt[] memory rs, uint64 firstSeq, uint32 count) external {
        _settleRaw(gw, rs, firstSeq, count, worker, 1e18);
    }

    /// A stranger settles a genuine receipt in a batch of its own (paid out of its own deposit): the receipt
    /// names another gateway, so the stranger's batch cannot audit it.
    function test_copyBatch_byStranger_cannotAuditTheReceipt() public {
        IAudit.Receipt[] memory original = _receipts(worker, 1);
        _settle(original);
        _fund(stranger, 10e18);
        vm.startPrank(stranger);
        grid.deposit(10e18);
        grid.increaseGatewayCap(stranger, type(uint256).max);
        vm.stopPrank();
        IPayments.PayerDebit[] memory debits = new IPayments.PayerDebit[](1);
        debits[0] = IPayments.PayerDebit({payer: stranger, amount: 1});
        IPayments.WorkerCredit[] memory credits = new IPayments.WorkerCredit[](1);
        credits[0] = IPayments.WorkerCredit({worker: worker, gross: 1});
        IAudit.Receipt[] memory copy = _two(original[0], _receiptAt(stranger, worker, 0, 1));
        bytes32 root = ReceiptTree.root(ReceiptTree.leaves(copy));
        vm.prank(stranger);
        uint256 copyId = grid.settle(root, 0, 2, debits, credits);
        _fix(copyId);
        _nobodyCommits(
            copyId,
            copy,
            0,
            abi.encodeWithSelector(IAudit.ReceiptNotInBatch.selector, copyId, gateway, original[0].seq)
        );
    }

    /// Whoever opens the audit (any seat, fuzzed), the seats are the draw fixed before anyone acted, and no
    /// non-seated validator can open it in their place.
    function testFuzz_seats_doNotDependOnWhoOpens(uint256 opener) public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        address[] memory before = grid.assignedValidators(batchId, leaf);
        assertEq(before.length, VALIDATORS_PER_AUDIT);
        address[] memory vs = _all();
        for (uint256 i; i < vs.length; ++i) {
            if (_has(before, vs[i])) continue;
            bytes32 commitment = _commitment(vs[i], leaf, IAudit.Vote.Fail);
            bytes memory sig = _signature(rs[0]);
            bytes32[] memory proof = _proof(rs, 0);
            vm.expectRevert(abi.encodeWithSelector(IAudit.NotAssigned.selector, vs[i], leaf));
            vm.prank(vs[i]);
            grid.commitVote(batchId, rs[0], sig, proof, commitment);
        }
        _commit(before[bound(opener, 0, before.length - 1)], batchId, rs, 0, IAudit.Vote.Pass);
        address[] memory after_ = grid.assignedValidators(batchId, leaf);
        assertEq(keccak256(abi.encode(after_)), keccak256(abi.encode(before)));
    }
}
