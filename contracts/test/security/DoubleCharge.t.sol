// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAudit} from "../../src/interfaces/IAudit.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {ReceiptTree} from "../utils/ReceiptTree.sol";
import {SecurityFixture} from "./SecurityFixture.sol";

/// @notice Threat model of contracts/README.md, attack 4: the same signed receipts plus one extra leaf,
/// settled again. What the contract guarantees: each gateway's batches cover contiguous, disjoint ranges of
/// receipt numbers, so a receipt number (signed by the worker) lies in exactly one batch, and a root is
/// settled at most once. What it cannot see: the leaves under a root; debits are not checked leaf by leaf on
/// chain (see the last test).
contract DoubleChargeTest is SecurityFixture {
    /// @dev External so expectRevert sees exactly the settle call.
    function settleAs(IAudit.Receipt[] memory rs, uint64 firstSeq, uint32 count, uint256 amount) external {
        _settleRaw(gateway, rs, firstSeq, count, worker, amount);
    }

    function _plusOne(IAudit.Receipt[] memory rs, uint64 extraSeq) internal view returns (IAudit.Receipt[] memory out) {
        out = new IAudit.Receipt[](rs.length + 1);
        for (uint256 i; i < rs.length; ++i) {
            out[i] = rs[i];
        }
        out[rs.length] = _receiptAt(gateway, worker, extraSeq, 7e18);
    }

    /// The same receipts plus one, under any receipt number of the first batch: SequenceMismatch; the same
    /// root again: BatchAlreadySettled. The payer is not debited twice.
    function testFuzz_sameReceiptsPlusOne_cannotBeSettledUnderTheirNumbers(uint8 n, uint64 firstSeq) public {
        n = uint8(bound(n, 1, 8));
        IAudit.Receipt[] memory rs = _receipts(worker, n);
        _settle(rs);
        uint256 deposit = grid.depositOf(payer).balance;
        firstSeq = uint64(bound(firstSeq, 0, n - 1));
        IAudit.Receipt[] memory again = _plusOne(rs, n);
        vm.expectRevert(abi.encodeWithSelector(IPayments.SequenceMismatch.selector, gateway, uint64(n), firstSeq));
        this.settleAs(again, firstSeq, n + 1, (uint256(n) + 7) * 1e18);
        vm.expectRevert(
            abi.encodeWithSelector(IPayments.BatchAlreadySettled.selector, ReceiptTree.root(ReceiptTree.leaves(rs)))
        );
        this.settleAs(rs, n, n, uint256(n) * 1e18);
        assertEq(grid.depositOf(payer).balance, deposit);
        assertEq(grid.batchCount(), 1);
    }

    /// Any sequence of batches (fuzzed lengths) covers [0, Σ counts) exactly once: batch i starts where
    /// batch i - 1 ended, so every receipt number lies in exactly one batch's range.
    function testFuzz_receiptRanges_areContiguousAndDisjoint(uint32[6] memory counts, uint64 probe) public {
        uint64 total;
        for (uint256 i; i < counts.length; ++i) {
            counts[i] = uint32(bound(counts[i], 1, 1_000_000));
            IAudit.Receipt memory r = _receiptAt(gateway, worker, total, 1e18 + i);
            uint256 id = _settleRaw(gateway, _only(r), total, counts[i], worker, 1e18);
            IPayments.Batch memory b = grid.getBatch(id);
            assertEq(b.firstSeq, total);
            assertEq(b.receiptCount, counts[i]);
            total += counts[i];
            assertEq(grid.nextReceiptSeq(gateway), total);
        }
        probe = uint64(bound(probe, 0, total - 1));
        uint256 holders;
        for (uint256 id = 1; id <= counts.length; ++id) {
            IPayments.Batch memory b = grid.getBatch(id);
            if (probe >= b.firstSeq && probe < b.firstSeq + b.receiptCount) ++holders;
        }
        assertEq(holders, 1);
    }

    /// DOCUMENTED LIMIT. Under NEW numbers the gateway can settle the old receipts plus one again and debit
    /// the payer again: the chain sees a root, a range and sums, never the leaves. What still holds:
    /// (a) none of the copied receipts can be audited in the new batch (their seq is outside its range), so
    /// the copy buys no influence over audits; (b) the double charge is provable off chain by anyone holding
    /// a copied receipt (signed seq outside the batch's range, plus a Merkle proof); (c) the payer's loss is
    /// bounded by the cap it gave this gateway, which it can lower at any time (decreaseGatewayCap).
    function test_reSettledUnderNewNumbers_isUnauditable_andBoundedByTheCap_documentedLimit() public {
        IAudit.Receipt[] memory rs = _receipts(worker, 2);
        _settle(rs);
        // a payer with a finite cap
        vm.startPrank(payer);
        grid.decreaseGatewayCap(gateway, type(uint256).max);
        grid.increaseGatewayCap(gateway, 3e18);
        vm.stopPrank();

        uint64 next = grid.nextReceiptSeq(gateway);
        IAudit.Receipt[] memory again = _plusOne(rs, next);
        uint256 deposit = grid.depositOf(payer).balance;
        uint256 copyId = _settleRaw(gateway, again, next, 3, worker, 3e18);
        assertEq(grid.depositOf(payer).balance, deposit - 3e18, "the chain cannot see the leaves");

        // (a) the copies are not auditable there
        _fix(copyId);
        bytes32 commitment = _commitment(v1, _leaf(rs[0]), IAudit.Vote.Fail);
        bytes memory sig = _signature(rs[0]);
        bytes32[] memory proof = _proof(again, 0);
        vm.expectRevert(abi.encodeWithSelector(IAudit.ReceiptNotInBatch.selector, copyId, gateway, rs[0].seq));
        vm.prank(v1);
        grid.commitVote(copyId, rs[0], sig, proof, commitment);
        // (b) the evidence: a leaf of the copy batch whose signed seq is outside its range
        IPayments.Batch memory b = grid.getBatch(copyId);
        assertTrue(rs[0].seq < b.firstSeq);
        // (c) bounded by the cap: nothing more can be taken
        assertEq(grid.gatewayAllowance(payer, gateway), 0);
        uint64 next2 = grid.nextReceiptSeq(gateway);
        vm.expectRevert(abi.encodeWithSelector(IPayments.GatewayCapExceeded.selector, payer, gateway, 1, 0));
        this.settleAs(_plusOne(rs, next2), next2, 3, 1);
    }
}
