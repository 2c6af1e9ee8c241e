// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAudit} from "../../src/interfaces/IAudit.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {AuditFixture} from "../utils/AuditFixture.sol";
import {ReceiptTree} from "../utils/ReceiptTree.sol";

/// @notice Shared helpers of the issue-8 attack suite: receipts for any gateway and number, settlements with
/// chosen ranges, and a snapshot of every amount the diamond books for someone.
abstract contract SecurityFixture is AuditFixture {
    address internal attacker = makeAddr("attacker");
    address internal stranger = makeAddr("stranger");

    /// @dev Every booked amount the tests watch, in one struct (bonds active + unbonding).
    struct Money {
        uint256 diamondBalance;
        uint256 workerStake;
        uint256 v1Stake;
        uint256 v2Stake;
        uint256 v3Stake;
        uint256 payerDeposit;
        uint256 workerEarnings;
        uint256 validatorPool;
        uint256 protocolFees;
        uint256 totalWorkerBonded;
        uint256 totalValidatorBonded;
    }

    function _money() internal view returns (Money memory m) {
        m.diamondBalance = aipg.balanceOf(address(grid));
        m.workerStake = _workerStake(worker);
        m.v1Stake = _validatorStake(v1);
        m.v2Stake = _validatorStake(v2);
        m.v3Stake = _validatorStake(v3);
        m.payerDeposit = grid.depositOf(payer).balance;
        m.workerEarnings = grid.earningsOf(worker);
        m.validatorPool = grid.validatorPool();
        m.protocolFees = grid.protocolFees();
        m.totalWorkerBonded = grid.totalWorkerBonded();
        m.totalValidatorBonded = grid.totalValidatorBonded();
    }

    function _assertSameMoney(Money memory a, Money memory b) internal pure {
        assertEq(keccak256(abi.encode(a)), keccak256(abi.encode(b)), "booked amounts changed");
    }

    /// @dev A receipt of `who` for `gw` with number `seq` and fee `fee`, completed now.
    function _receiptAt(address gw, address who, uint64 seq, uint256 fee) internal view returns (IAudit.Receipt memory) {
        return IAudit.Receipt({
            jobId: keccak256(abi.encode("sec-job", gw, seq, fee)),
            gateway: gw,
            payer: payer,
            worker: who,
            modelId: MODEL,
            requestHash: keccak256(abi.encode("sec-request", gw, seq)),
            outputHash: keccak256(abi.encode("sec-output", gw, seq)),
            inputUnits: 100,
            outputUnits: 200,
            fee: fee,
            completedAt: uint64(block.timestamp),
            confidential: false,
            seq: seq
        });
    }

    /// @dev `gw` settles the tree of `rs` as receipt numbers [firstSeq, firstSeq + count), the payer paying
    /// `amount` to `who` (one debit, one credit). The payer must have a cap for `gw`.
    function _settleRaw(
        address gw,
        IAudit.Receipt[] memory rs,
        uint64 firstSeq,
        uint32 count,
        address who,
        uint256 amount
    ) internal returns (uint256 batchId) {
        IPayments.PayerDebit[] memory debits = new IPayments.PayerDebit[](1);
        debits[0] = IPayments.PayerDebit({payer: payer, amount: amount});
        IPayments.WorkerCredit[] memory credits = new IPayments.WorkerCredit[](1);
        credits[0] = IPayments.WorkerCredit({worker: who, gross: amount});
        vm.prank(gw);
        batchId = grid.settle(ReceiptTree.root(ReceiptTree.leaves(rs)), firstSeq, count, debits, credits);
    }

    function _only(IAudit.Receipt memory r) internal pure returns (IAudit.Receipt[] memory rs) {
        rs = new IAudit.Receipt[](1);
        rs[0] = r;
    }

    function _two(IAudit.Receipt memory a, IAudit.Receipt memory b) internal pure returns (IAudit.Receipt[] memory rs) {
        rs = new IAudit.Receipt[](2);
        rs[0] = a;
        rs[1] = b;
    }

    /// @dev Gives `gw` an unlimited cap on the payer's deposit.
    function _approveGateway(address gw) internal {
        vm.prank(payer);
        grid.increaseGatewayCap(gw, type(uint256).max);
    }

    function _three(address a, address b, address c) internal pure returns (address[] memory x) {
        x = new address[](3);
        x[0] = a;
        x[1] = b;
        x[2] = c;
    }

    function _threeVotes(IAudit.Vote a, IAudit.Vote b, IAudit.Vote c) internal pure returns (IAudit.Vote[] memory x) {
        x = new IAudit.Vote[](3);
        x[0] = a;
        x[1] = b;
        x[2] = c;
    }

    function _has(address[] memory xs, address x) internal pure returns (bool) {
        for (uint256 i; i < xs.length; ++i) {
            if (xs[i] == x) return true;
        }
        return false;
    }
}
