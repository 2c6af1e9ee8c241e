// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAudit} from "../../src/interfaces/IAudit.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {GridFixture} from "./GridFixture.sol";
import {ReceiptTree} from "./ReceiptTree.sol";

/// @notice A grid with a bonded worker, three bonded validators (k = 3: all of them are assigned to every
/// audit) and helpers to settle batches of real receipts, fix their randomness and attest.
abstract contract AuditFixture is GridFixture {
    address internal worker = makeAddr("worker");
    address internal payer = makeAddr("payer");
    address internal gateway = makeAddr("gateway");
    address internal v1 = makeAddr("validator1");
    address internal v2 = makeAddr("validator2");
    address internal v3 = makeAddr("validator3");

    bytes32 internal constant MODEL = keccak256("model");
    uint256 internal constant WORKER_BOND = 2 * WORKER_MIN;

    uint256 private jobNonce;

    function setUp() public virtual override {
        super.setUp();
        _bondWorker(worker, WORKER_BOND);
        _bondValidator(v1, VALIDATOR_MIN);
        _bondValidator(v2, VALIDATOR_MIN);
        _bondValidator(v3, VALIDATOR_MIN);
        _fund(payer, 1_000_000e18);
        vm.startPrank(payer);
        grid.deposit(1_000_000e18);
        grid.approveGateway(gateway, type(uint256).max);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- receipts and batches

    function _receipt(address who) internal returns (IAudit.Receipt memory) {
        uint256 n = ++jobNonce;
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
            confidential: false
        });
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
        vm.prank(gateway);
        batchId = grid.settle(ReceiptTree.root(ReceiptTree.leaves(rs)), uint32(rs.length), debits, credits);
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

    function _attest(
        address caller,
        uint256 batchId,
        IAudit.Receipt[] memory rs,
        uint256 index,
        IAudit.Vote vote
    ) internal {
        vm.prank(caller);
        grid.attest(batchId, rs[index], _proof(rs, index), vote, keccak256(abi.encode("evidence", caller)));
    }

    function _closeWindow(uint256 batchId) internal {
        vm.warp(uint256(grid.batchAudit(batchId).deadline) + 1);
    }

    function _setConfig(IAudit.AuditConfig memory c) internal {
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
