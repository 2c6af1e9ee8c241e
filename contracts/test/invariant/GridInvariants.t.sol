// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {console} from "forge-std/console.sol";
import {GridFixture} from "../utils/GridFixture.sol";
import {GridHandler} from "./handlers/GridHandler.sol";
import {AuditHandler} from "./handlers/AuditHandler.sol";

/// @notice Money conservation across bonding, escrow, settlement and audits (slashes, rewards), under random
/// sequences of user actions.
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

        bytes4[] memory selectors = new bytes4[](26);
        selectors[0] = GridHandler.bond.selector;
        selectors[1] = GridHandler.increaseBond.selector;
        selectors[2] = GridHandler.requestUnbond.selector;
        selectors[3] = GridHandler.cancelUnbond.selector;
        selectors[4] = GridHandler.withdrawBond.selector;
        selectors[5] = GridHandler.deposit.selector;
        selectors[6] = GridHandler.depositFor.selector;
        selectors[7] = GridHandler.approveGateway.selector;
        selectors[8] = GridHandler.requestDepositWithdrawal.selector;
        selectors[9] = GridHandler.withdrawDeposit.selector;
        selectors[10] = GridHandler.settle.selector;
        selectors[11] = GridHandler.settle.selector; // settle twice as often: it is what moves money around
        selectors[12] = GridHandler.withdrawEarnings.selector;
        selectors[13] = GridHandler.withdrawProtocolFees.selector;
        selectors[14] = GridHandler.warp.selector;
        selectors[15] = GridHandler.togglePause.selector;
        // audits: batches of real receipts, randomness, up to three votes per audit, verdicts
        selectors[16] = AuditHandler.settleReceipts.selector;
        selectors[17] = AuditHandler.settleReceipts.selector;
        selectors[18] = AuditHandler.fixRandomness.selector;
        selectors[19] = AuditHandler.attest.selector;
        selectors[20] = AuditHandler.attest.selector;
        selectors[21] = AuditHandler.attest.selector;
        selectors[22] = AuditHandler.attest.selector;
        selectors[23] = AuditHandler.finalize.selector;
        selectors[24] = AuditHandler.finalize.selector;
        selectors[25] = AuditHandler.finalize.selector;
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

    /// @dev (4) Audits: a validator is only ever slashed for voting against a verdict (so one on the winning
    /// side never loses stake), a worker only by a FAIL verdict, each by exactly what the handler predicted.
    function invariant_slashesOnlyFromVerdicts() public view {
        assertFalse(handler.ghost_winnerLostStake(), "a winning validator lost stake");
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

    /// @dev Run with -vv to see how often each action reached the diamond in the last sequence.
    function afterInvariant() external view {
        bytes4[19] memory sel = [
            GridHandler.bond.selector,
            GridHandler.increaseBond.selector,
            GridHandler.requestUnbond.selector,
            GridHandler.cancelUnbond.selector,
            GridHandler.withdrawBond.selector,
            GridHandler.deposit.selector,
            GridHandler.depositFor.selector,
            GridHandler.approveGateway.selector,
            GridHandler.requestDepositWithdrawal.selector,
            GridHandler.withdrawDeposit.selector,
            GridHandler.settle.selector,
            GridHandler.withdrawEarnings.selector,
            GridHandler.withdrawProtocolFees.selector,
            GridHandler.warp.selector,
            GridHandler.togglePause.selector,
            AuditHandler.settleReceipts.selector,
            AuditHandler.fixRandomness.selector,
            AuditHandler.attest.selector,
            AuditHandler.finalize.selector
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
                "; attestations ",
                vm.toString(handler.ghost_attestations())
            )
        );
    }
}
