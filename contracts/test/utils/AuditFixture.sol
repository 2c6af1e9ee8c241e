// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAudit} from "../../src/interfaces/IAudit.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {GridFixture} from "./GridFixture.sol";
import {ReceiptTree} from "./ReceiptTree.sol";

/// @notice A grid with a bonded worker (whose operator key signs its receipts), three bonded validators (k = 3:
/// all of them are assigned to every audit) and helpers to settle batches of real, signed receipts, fix their
/// randomness, commit and reveal votes.
abstract contract AuditFixture is GridFixture {
    address internal worker = makeAddr("worker");
    // The worker's operator key (named at bonding): signs every receipt of `worker`.
    uint256 internal workerKey = uint256(keccak256("worker operator key"));
    address internal workerOperator = vm.addr(uint256(keccak256("worker operator key")));
    address internal payer = makeAddr("payer");
    address internal gateway = makeAddr("gateway");
    address internal v1 = makeAddr("validator1");
    address internal v2 = makeAddr("validator2");
    address internal v3 = makeAddr("validator3");

    bytes32 internal constant MODEL = keccak256("model");
    uint256 internal constant WORKER_BOND = 2 * WORKER_MIN;

    uint256 private jobNonce;
    // Per gateway: the next receipt number the fixture hands out (it settles them in order).
    mapping(address gateway => uint64) internal nextSeq;
    // Per worker bond owner: the private key of its operator, for signing.
    mapping(address worker => uint256) internal signingKey;

    function setUp() public virtual override {
        super.setUp();
        _fund(worker, WORKER_BOND);
        vm.startPrank(worker);
        aipg.approve(address(grid), WORKER_BOND);
        grid.bondWorker(WORKER_BOND, workerOperator);
        vm.stopPrank();
        signingKey[worker] = workerKey;
        // Validators bond a block before anything is settled: seats come from the stakes of the block
        // before settlement.
        _bondValidator(v1, VALIDATOR_MIN);
        _bondValidator(v2, VALIDATOR_MIN);
        _bondValidator(v3, VALIDATOR_MIN);
        _fund(payer, 1_000_000e18);
        vm.startPrank(payer);
        grid.deposit(1_000_000e18);
        grid.increaseGatewayCap(gateway, type(uint256).max);
        vm.stopPrank();
        vm.roll(block.number + 1);
    }

    // ---------------------------------------------------------------- receipts and batches

    /// @dev A receipt of `who` for `gateway`, numbered with the gateway's next receipt number.
    function _receipt(address who) internal returns (IAudit.Receipt memory) {
        uint256 n = ++jobNonce;
        uint64 seq = nextSeq[gateway]++;
        return IAudit.Receipt({
            jobId: keccak256(abi.encode("job", n)),
            gateway: gateway,
            payer: payer,
            worker: who,
            modelId: MODEL,
            requestHash: keccak256(abi.encode("request", n)),
            outputHash: keccak256(abi.encode("output", n)),
            inputUnits: 100,
            outputUnits: 200,
            fee: 1e18,
            completedAt: uint64(block.timestamp),
            confidential: false,
            seq: seq
        });
    }

    /// @dev `key`'s 65-byte EIP-712 signature of `r` under the grid's domain.
    function _sign(uint256 key, IAudit.Receipt memory r) internal view returns (bytes memory) {
        (uint8 v, bytes32 rr, bytes32 ss) = vm.sign(key, grid.receiptDigest(r));
        return abi.encodePacked(rr, ss, v);
    }

    /// @dev The signature of `r` by its worker's operator key (registered with `signingKey`).
    function _signature(IAudit.Receipt memory r) internal view returns (bytes memory) {
        return _sign(signingKey[r.worker], r);
    }

    function _receipts(address who, uint256 n) internal returns (IAudit.Receipt[] memory rs) {
        rs = new IAudit.Receipt[](n);
        for (uint256 i; i < n; ++i) {
            rs[i] = _receipt(who);
        }
    }

    /// @dev The gateway settles `rs` (root = their Merkle root), the payer paying every fee.
    function _settle(IAudit.Receipt[] memory rs) internal returns (uint256 batchId) {
        IPayments.PayerDebit[] memory debits = new IPayments.PayerDebit[](1);
        IPayments.WorkerCredit[] memory credits = new IPayments.WorkerCredit[](rs.length);
        uint256 total;
        for (uint256 i; i < rs.length; ++i) {
            credits[i] = IPayments.WorkerCredit({worker: rs[i].worker, gross: rs[i].fee});
            total += rs[i].fee;
        }
        debits[0] = IPayments.PayerDebit({payer: payer, amount: total});
        uint64 firstSeq = grid.nextReceiptSeq(gateway);
        vm.prank(gateway);
        batchId =
            grid.settle(ReceiptTree.root(ReceiptTree.leaves(rs)), firstSeq, uint32(rs.length), debits, credits);
    }

    /// @dev Like `_settle`, but every fee is credited to `creditTo` (a bonded worker): for receipts naming a
    /// worker that can no longer be credited (it withdrew its bond).
    function _settleCrediting(IAudit.Receipt[] memory rs, address creditTo) internal returns (uint256 batchId) {
        uint256 total;
        for (uint256 i; i < rs.length; ++i) {
            total += rs[i].fee;
        }
        IPayments.PayerDebit[] memory debits = new IPayments.PayerDebit[](1);
        debits[0] = IPayments.PayerDebit({payer: payer, amount: total});
        IPayments.WorkerCredit[] memory credits = new IPayments.WorkerCredit[](1);
        credits[0] = IPayments.WorkerCredit({worker: creditTo, gross: total});
        uint64 firstSeq = grid.nextReceiptSeq(gateway);
        vm.prank(gateway);
        batchId =
            grid.settle(ReceiptTree.root(ReceiptTree.leaves(rs)), firstSeq, uint32(rs.length), debits, credits);
    }

    /// @dev Mines past the randomness delay and fixes the batch's randomness.
    function _fix(uint256 batchId) internal {
        uint64 settledBlock = grid.getBatch(batchId).settledBlock;
        uint256 ready = uint256(settledBlock) + grid.auditConfig().randomnessDelay + 1;
        if (block.number < ready) vm.roll(ready);
        grid.fixRandomness(batchId);
    }

    /// @dev One settled and fixed batch of `n` receipts of `worker`.
    function _fixedBatch(uint256 n) internal returns (uint256 batchId, IAudit.Receipt[] memory rs) {
        rs = _receipts(worker, n);
        batchId = _settle(rs);
        _fix(batchId);
    }

    function _proof(IAudit.Receipt[] memory rs, uint256 index) internal pure returns (bytes32[] memory) {
        return ReceiptTree.proof(ReceiptTree.leaves(rs), index);
    }

    function _leaf(IAudit.Receipt memory r) internal pure returns (bytes32) {
        return ReceiptTree.leaf(r);
    }

    function _evidence(address validator) internal pure returns (bytes32) {
        return keccak256(abi.encode("evidence", validator));
    }

    function _salt(address validator, bytes32 leaf) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", validator, leaf));
    }

    /// @dev `caller` (a validator owner, or its operator with `validator` its owner) commits `vote` on
    /// `rs[index]`, with the fixture's evidence hash and salt.
    function _commit(address caller, uint256 batchId, IAudit.Receipt[] memory rs, uint256 index, IAudit.Vote vote)
        internal
    {
        address validator = grid.validatorOf(caller);
        if (validator == address(0)) validator = caller;
        bytes32 commitment = _commitment(validator, _leaf(rs[index]), vote);
        bytes memory signature = _signature(rs[index]);
        bytes32[] memory proof = _proof(rs, index);
        vm.prank(caller);
        grid.commitVote(batchId, rs[index], signature, proof, commitment);
    }

    /// @dev The commitment `_commit` makes for `validator` (a bond owner).
    function _commitment(address validator, bytes32 leaf, IAudit.Vote vote) internal view returns (bytes32) {
        return grid.voteCommitment(leaf, validator, vote, _evidence(validator), _salt(validator, leaf));
    }

    /// @dev `_commit`, expecting it to revert with `err` (every view call is made before the expectation).
    function _expectCommitRevert(
        bytes memory err,
        address caller,
        uint256 batchId,
        IAudit.Receipt[] memory rs,
        uint256 index,
        IAudit.Vote vote
    ) internal {
        address validator = grid.validatorOf(caller);
        if (validator == address(0)) validator = caller;
        bytes32 commitment = _commitment(validator, _leaf(rs[index]), vote);
        bytes memory signature = _signature(rs[index]);
        bytes32[] memory proof = _proof(rs, index);
        vm.expectRevert(err);
        vm.prank(caller);
        grid.commitVote(batchId, rs[index], signature, proof, commitment);
    }

    /// @dev `_reveal`, expecting it to revert with `err`.
    function _expectRevealRevert(bytes memory err, address caller, IAudit.Receipt memory r, IAudit.Vote vote)
        internal
    {
        address validator = grid.validatorOf(caller);
        if (validator == address(0)) validator = caller;
        bytes32 leaf = _leaf(r);
        vm.expectRevert(err);
        vm.prank(caller);
        grid.revealVote(leaf, vote, _evidence(validator), _salt(validator, leaf));
    }

    /// @dev Reveals what `_commit` committed (the commit window must have closed: see `_toReveal`).
    function _reveal(address caller, IAudit.Receipt memory r, IAudit.Vote vote) internal {
        address validator = grid.validatorOf(caller);
        if (validator == address(0)) validator = caller;
        bytes32 leaf = _leaf(r);
        vm.prank(caller);
        grid.revealVote(leaf, vote, _evidence(validator), _salt(validator, leaf));
    }

    /// @dev Past the commit deadline: reveals are open.
    function _toReveal(uint256 batchId) internal {
        vm.warp(uint256(grid.batchAudit(batchId).deadline) + 1);
    }

    /// @dev Past the reveal deadline: the audit can be finalized.
    function _closeWindow(uint256 batchId) internal {
        vm.warp(uint256(grid.batchAudit(batchId).revealDeadline) + 1);
    }

    /// @dev Each `voters[i]` commits `votes[i]` on `rs[index]`, all reveal, the windows close.
    function _vote(
        uint256 batchId,
        IAudit.Receipt[] memory rs,
        uint256 index,
        address[] memory voters,
        IAudit.Vote[] memory votes
    ) internal {
        for (uint256 i; i < voters.length; ++i) {
            _commit(voters[i], batchId, rs, index, votes[i]);
        }
        _toReveal(batchId);
        for (uint256 i; i < voters.length; ++i) {
            _reveal(voters[i], rs[index], votes[i]);
        }
        _closeWindow(batchId);
    }

    /// @dev Announces `c` as the owner, waits the cut delay and applies it.
    function _setConfig(IAudit.AuditConfig memory c) internal {
        vm.prank(owner);
        grid.announceAuditConfig(c);
        vm.warp(block.timestamp + CUT_DELAY);
        vm.prank(owner);
        grid.setAuditConfig(c);
    }

    function _validatorStake(address v) internal view returns (uint256) {
        return grid.validatorBond(v).amount + grid.validatorBond(v).unbonding;
    }

    function _workerStake(address w) internal view returns (uint256) {
        return grid.workerBond(w).amount + grid.workerBond(w).unbonding;
    }
}
