// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {console} from "forge-std/console.sol";
import {GridFixture} from "../utils/GridFixture.sol";
import {IAudit} from "../../src/interfaces/IAudit.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {GridHandler} from "./handlers/GridHandler.sol";
import {AuditHandler} from "./handlers/AuditHandler.sol";

/// @notice Money conservation across bonding, escrow, settlement and commit-reveal audits (slashes, rewards),
/// under random sequences of user actions; bounded audits, stakes nobody can take, rewards within what each
/// batch paid, receipt ranges that never overlap.
contract GridInvariantsTest is GridFixture {
    AuditHandler internal handler;

    function setUp() public override {
        super.setUp();
        handler = new AuditHandler(grid, aipg, owner, treasury, 6);
        aipg.transferOwnership(address(handler)); // the handler mints what actors put in
        // A network to audit from the first call: four validators (k = 3 of them per audit), three workers.
        for (uint256 i; i < 4; ++i) {
            handler.bond(i, 3 * VALIDATOR_MIN, true); // a few false attestations away from inactive
        }
        for (uint256 i = 3; i < 6; ++i) {
            handler.bond(i, 0, false);
        }
        handler.deposit(0, 1e24, 1);
        handler.deposit(1, 1e24, 2);
        // seats are drawn from the stakes of the block before settlement
        vm.roll(block.number + 1);

        bytes4[] memory selectors = new bytes4[](29);
        selectors[0] = GridHandler.bond.selector;
        selectors[1] = GridHandler.increaseBond.selector;
        selectors[2] = GridHandler.requestUnbond.selector;
        selectors[3] = GridHandler.cancelUnbond.selector;
        selectors[4] = GridHandler.withdrawBond.selector;
        selectors[5] = GridHandler.deposit.selector;
        selectors[6] = GridHandler.depositFor.selector;
        selectors[7] = GridHandler.changeGatewayCap.selector;
        selectors[8] = GridHandler.requestDepositWithdrawal.selector;
        selectors[9] = GridHandler.withdrawDeposit.selector;
        selectors[10] = GridHandler.settle.selector;
        selectors[11] = GridHandler.settle.selector; // settle twice as often: it is what moves money around
        selectors[12] = GridHandler.withdrawEarnings.selector;
        selectors[13] = GridHandler.withdrawProtocolFees.selector;
        selectors[14] = GridHandler.warp.selector;
        selectors[15] = GridHandler.togglePause.selector;
        // audits: batches of signed receipts, randomness, commits, reveals, verdicts, key rotations
        selectors[16] = AuditHandler.settleReceipts.selector;
        selectors[17] = AuditHandler.settleReceipts.selector;
        selectors[18] = AuditHandler.fixRandomness.selector;
        selectors[19] = AuditHandler.commit.selector;
        selectors[20] = AuditHandler.commit.selector;
        selectors[21] = AuditHandler.commit.selector;
        selectors[22] = AuditHandler.commit.selector;
        selectors[23] = AuditHandler.reveal.selector;
        selectors[24] = AuditHandler.reveal.selector;
        selectors[25] = AuditHandler.reveal.selector;
        selectors[26] = AuditHandler.finalize.selector;
        selectors[27] = AuditHandler.finalize.selector;
        selectors[28] = AuditHandler.rotateWorkerKey.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        targetContract(address(handler));
    }

    /// @dev (1) The diamond holds exactly every bond (active + unbonding), deposit, earning and pool, both
    /// by the handler's books and by the diamond's own views.
    function invariant_balanceEqualsLiabilities() public view {
        uint256 deposits;
        uint256 earnings;
        uint256 n = handler.actorCount();
        for (uint256 i; i < n; ++i) {
            address a = handler.actors(i);
            deposits += grid.depositOf(a).balance;
            earnings += grid.earningsOf(a);
        }
        uint256 balance = aipg.balanceOf(address(grid));
        assertEq(
            balance,
            grid.totalWorkerBonded() + grid.totalValidatorBonded() + deposits + earnings
                + grid.validatorPool() + grid.protocolFees(),
            "balance != views"
        );
        assertEq(
            balance,
            handler.ghost_workerBonded() + handler.ghost_validatorBonded() + handler.ghost_deposits()
                + handler.ghost_earnings() + handler.ghost_validatorPool() + handler.ghost_protocolFees(),
            "balance != ghosts"
        );
        assertEq(deposits, handler.ghost_deposits(), "deposits");
        assertEq(earnings, handler.ghost_earnings(), "earnings");
        assertEq(grid.validatorPool(), handler.ghost_validatorPool(), "validator pool");
        assertEq(grid.protocolFees(), handler.ghost_protocolFees(), "protocol fees");
        assertEq(aipg.balanceOf(treasury), handler.ghost_protocolFeesPaid(), "treasury");
        assertEq(grid.batchCount(), handler.ghost_batches(), "batches");
    }

    /// @dev (2) Nobody ever got more from the diamond than was credited to it, and each actor's money is
    /// fully accounted for: what it put in or earned = what it received + what it still holds inside
    /// + what it paid gateways + what audits slashed from it. Every withdrawal paid exactly what the books
    /// said.
    function invariant_noActorReceivesMoreThanCredited() public view {
        uint256 n = handler.actorCount();
        for (uint256 i; i < n; ++i) {
            address a = handler.actors(i);
            uint256 credited =
                handler.ghost_bondedIn(a) + handler.ghost_depositedIn(a) + handler.ghost_earned(a);
            uint256 received = handler.ghost_received(a);
            assertLe(received, credited, "received more than credited");
            uint256 inside = grid.workerBond(a).amount + grid.workerBond(a).unbonding
                + grid.validatorBond(a).amount + grid.validatorBond(a).unbonding + grid.depositOf(a).balance
                + grid.earningsOf(a);
            assertEq(
                credited,
                received + inside + handler.ghost_debited(a) + handler.ghost_slashed(a),
                "actor books"
            );
        }
        assertFalse(handler.ghost_payoutMismatch(), "a withdrawal paid the wrong amount");
        assertFalse(handler.ghost_capMismatch(), "a gateway cap moved other than asked");
    }

    /// @dev (3) The registries' totals match the handler's sums and the sum over every bond.
    function invariant_totalBondedMatchesBonds() public view {
        assertEq(grid.totalWorkerBonded(), handler.ghost_workerBonded(), "worker total vs ghost");
        assertEq(grid.totalValidatorBonded(), handler.ghost_validatorBonded(), "validator total vs ghost");
        uint256 workers;
        uint256 validators;
        uint256 n = handler.actorCount();
        for (uint256 i; i < n; ++i) {
            address a = handler.actors(i);
            workers += grid.workerBond(a).amount + grid.workerBond(a).unbonding;
            validators += grid.validatorBond(a).amount + grid.validatorBond(a).unbonding;
        }
        assertEq(grid.totalWorkerBonded(), workers, "worker total vs bonds");
        assertEq(grid.totalValidatorBonded(), validators, "validator total vs bonds");
    }

    /// @dev The revenue shares fixed at deployment never change.
    function invariant_sharesFixed() public view {
        assertEq(grid.revenueShares().workerBps, WORKER_BPS);
        assertEq(grid.revenueShares().validatorBps, VALIDATOR_BPS);
        assertEq(grid.revenueShares().protocolBps, PROTOCOL_BPS);
    }

    /// @dev (4) Audits: a validator is only ever slashed for revealing against a verdict or for committing and
    /// never revealing (so one on the winning side never loses stake), a worker only by a FAIL verdict, each by
    /// exactly what the handler predicted.
    function invariant_slashesOnlyFromVerdicts() public view {
        assertFalse(handler.ghost_winnerLostStake(), "a winning validator lost stake");
        assertFalse(handler.ghost_unseatedCommit(), "a validator not seated committed");
        assertFalse(handler.ghost_badRevealAccepted(), "a reveal that does not open its commitment counted");
        assertFalse(handler.ghost_auditMismatch(), "a verdict moved other amounts than predicted");
        uint256 n = handler.actorCount();
        for (uint256 i; i < n; ++i) {
            address a = handler.actors(i);
            assertEq(
                grid.validatorBond(a).slashed, handler.ghost_falseAttestationSlashed(a), "validator slashed"
            );
            assertEq(grid.workerBond(a).slashed, handler.ghost_workerSlashed(a), "worker slashed");
        }
    }

    /// @dev (5) Nobody is paid twice for one audit, and no audit is finalized twice.
    function invariant_noAuditPaysTwice() public view {
        assertFalse(handler.ghost_paidTwice(), "a voter was paid other than its one reward");
        assertFalse(handler.ghost_finalizedTwice(), "an audit was finalized twice");
    }

    /// @dev (6) Every audit has at most k seats (k of the config it was fixed under, fixed for the run), at
    /// most one commit per seat and at most one revealed vote per commit.
    function invariant_auditsBoundedBySeats() public view {
        uint256 k = grid.auditConfig().validatorsPerAudit;
        uint256 n = handler.auditedLeafCount();
        for (uint256 i; i < n; ++i) {
            bytes32 leaf = handler.auditedLeaves(i);
            IAudit.AuditInfo memory a = grid.getAudit(leaf);
            assertLe(a.seats, k, "more seats than k");
            assertEq(grid.assignedValidators(a.batchId, leaf).length, a.seats, "seats moved");
            assertLe(a.commits, a.seats, "more commits than seats");
            assertLe(uint256(a.passVotes) + a.failVotes, a.commits, "more votes than commits");
        }
    }

    /// @dev (7) No bond ever decreased except by its owner's withdrawal, a finalized FAIL (worker, at most
    /// workerSlashAmount each) or a finalized audit the validator was against or silent after committing in (at
    /// most falseAttestationSlash each): every stake equals what the handler's books, which move only so,
    /// say it is.
    function invariant_bondsMoveOnlyByOwnerOrVerdict() public view {
        assertFalse(handler.ghost_slashAboveConfig(), "a slash above the config");
        uint256 n = handler.actorCount();
        for (uint256 i; i < n; ++i) {
            address a = handler.actors(i);
            assertEq(
                grid.workerBond(a).amount + grid.workerBond(a).unbonding, handler.ghost_workerStake(a), "worker stake"
            );
            assertEq(
                grid.validatorBond(a).amount + grid.validatorBond(a).unbonding,
                handler.ghost_validatorStake(a),
                "validator stake"
            );
        }
    }

    /// @dev (8) Audit rewards of a batch never exceed what that batch paid into the validator share: its
    /// rewardLeft is exactly its share minus what its PASS audits paid.
    function invariant_batchRewardsWithinTheBatchShare() public view {
        assertFalse(handler.ghost_batchShareMismatch(), "a batch recorded another validator share");
        uint256 count = grid.batchCount();
        for (uint256 id = 1; id <= count; ++id) {
            uint256 share = handler.ghost_batchShare(id);
            uint256 paid = handler.ghost_batchRewardsPaid(id);
            assertLe(paid, share, "rewards above the batch's share");
            assertEq(grid.getBatch(id).rewardLeft, share - paid, "rewardLeft");
        }
    }

    /// @dev (9) A receipt number is in at most one batch per gateway: each gateway's batches cover consecutive,
    /// disjoint ranges from 0 up to its nextReceiptSeq, and no settlement off the gateway's next number went
    /// through.
    function invariant_receiptRangesNeverOverlap() public view {
        assertFalse(handler.ghost_sequenceAccepted(), "a settlement off the next receipt number");
        uint256 n = handler.actorCount();
        address[] memory gateways = new address[](n);
        uint256[] memory end = new uint256[](n);
        for (uint256 g; g < n; ++g) {
            gateways[g] = handler.actors(g);
        }
        uint256 count = grid.batchCount();
        for (uint256 id = 1; id <= count; ++id) {
            IPayments.Batch memory b = grid.getBatch(id);
            uint256 g;
            while (gateways[g] != b.gateway) ++g; // every gateway is an actor
            assertEq(b.firstSeq, end[g], "a gap or an overlap between a gateway's batches");
            end[g] = uint256(b.firstSeq) + b.receiptCount;
        }
        for (uint256 g; g < n; ++g) {
            assertEq(grid.nextReceiptSeq(gateways[g]), end[g], "nextReceiptSeq");
        }
    }

    /// @dev Run with -vv to see how often each action reached the diamond in the last sequence.
    function afterInvariant() external view {
        bytes4[21] memory sel = [
            GridHandler.bond.selector,
            GridHandler.increaseBond.selector,
            GridHandler.requestUnbond.selector,
            GridHandler.cancelUnbond.selector,
            GridHandler.withdrawBond.selector,
            GridHandler.deposit.selector,
            GridHandler.depositFor.selector,
            GridHandler.changeGatewayCap.selector,
            GridHandler.requestDepositWithdrawal.selector,
            GridHandler.withdrawDeposit.selector,
            GridHandler.settle.selector,
            GridHandler.withdrawEarnings.selector,
            GridHandler.withdrawProtocolFees.selector,
            GridHandler.warp.selector,
            GridHandler.togglePause.selector,
            AuditHandler.settleReceipts.selector,
            AuditHandler.fixRandomness.selector,
            AuditHandler.commit.selector,
            AuditHandler.reveal.selector,
            AuditHandler.finalize.selector,
            AuditHandler.rotateWorkerKey.selector
        ];
        string memory line = "calls:";
        for (uint256 i; i < sel.length; ++i) {
            line = string.concat(line, " ", vm.toString(handler.calls(sel[i])));
        }
        console.log(line);
        console.log(
            string.concat(
                "verdicts: pass ",
                vm.toString(handler.ghost_verdicts(1)),
                " fail ",
                vm.toString(handler.ghost_verdicts(2)),
                " inconclusive ",
                vm.toString(handler.ghost_verdicts(3)),
                "; commits ",
                vm.toString(handler.ghost_commits()),
                " reveals ",
                vm.toString(handler.ghost_reveals()),
                " never revealed ",
                vm.toString(handler.ghost_hidden())
            )
        );
    }
}
