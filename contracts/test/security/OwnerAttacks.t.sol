// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IAudit, IRandomnessSource} from "../../src/interfaces/IAudit.sol";
import {IDiamond} from "../../src/interfaces/IDiamond.sol";
import {IDiamondCut} from "../../src/interfaces/IDiamondCut.sol";
import {IDiamondLoupe} from "../../src/interfaces/IDiamondLoupe.sol";
import {ICutTimelock} from "../../src/interfaces/ICutTimelock.sol";
import {IERC173} from "../../src/interfaces/IERC173.sol";
import {IPausable} from "../../src/interfaces/IPausable.sol";
import {IModelRegistry} from "../../src/interfaces/IModelRegistry.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {SecurityFixture} from "./SecurityFixture.sol";

/// @notice An `_init` a hostile owner would like to run: sends every AIPG the diamond holds to `to`.
contract DrainInit {
    function drain(address token, address to) external {
        IERC20(token).transfer(to, IERC20(token).balanceOf(address(this)));
    }
}

/// @notice A randomness source the owner controls: always ready, returns what the owner chose.
contract RiggedRandomness is IRandomnessSource {
    function randomness(uint256, uint64, uint64) external pure returns (bool, bytes32) {
        return (true, bytes32(uint256(1)));
    }
}

/// @notice Threat model of contracts/README.md, attack 1 and the "Also" items, by the owner and the pending
/// owner: no rule or source change applies before the announced delay, every config is bounded by the
/// deployment's limits, whoever reacts to an announcement is out before it applies, and no owner-only
/// selector moves anyone's funds.
contract OwnerAttacksTest is SecurityFixture {
    bytes32 internal constant NO_OWNER = keccak256("not the owner");

    /// @dev What the old contracts accepted at once: k = quorum = 1, 1 s windows, unlimited slash, 100% finder.
    function _hostileConfig() internal pure returns (IAudit.AuditConfig memory c) {
        c = IAudit.AuditConfig({
            auditRateBps: 10_000,
            validatorsPerAudit: 1,
            quorum: 1,
            commitWindow: 1,
            revealWindow: 1,
            randomnessDelay: 0,
            workerSlashAmount: type(uint256).max,
            falseAttestationSlash: 0,
            finderShareBps: 10_000,
            passReward: 0
        });
    }

    /// @dev The harshest config the deployment's limits allow.
    function _maxLegalConfig() internal pure returns (IAudit.AuditConfig memory c) {
        c = _defaultAuditConfig();
        c.validatorsPerAudit = MIN_VALIDATORS_PER_AUDIT;
        c.quorum = MIN_QUORUM;
        c.commitWindow = MIN_COMMIT_WINDOW;
        c.revealWindow = MIN_REVEAL_WINDOW;
        c.workerSlashAmount = WORKER_MIN * MAX_WORKER_SLASH_BPS / 10_000;
        c.falseAttestationSlash = VALIDATOR_MIN * MAX_FALSE_SLASH_BPS / 10_000;
        c.finderShareBps = MAX_FINDER_SHARE_BPS;
    }

    // ---------------------------------------------------------------- attack 1: immediate hostile config

    function test_setAuditConfig_hostileConfig_revertsAtOnceAndCannotBeAnnounced() public {
        IAudit.AuditConfig memory c = _hostileConfig();
        vm.startPrank(owner);
        vm.expectRevert(abi.encodeWithSelector(IAudit.InvalidAuditConfig.selector, "validatorsPerAudit"));
        grid.setAuditConfig(c);
        vm.expectRevert(abi.encodeWithSelector(IAudit.InvalidAuditConfig.selector, "validatorsPerAudit"));
        grid.announceAuditConfig(c);
        vm.stopPrank();
        assertEq(grid.auditConfig().workerSlashAmount, WORKER_SLASH);
    }

    /// Every field the old attack bent, pushed past its deployment limit by a fuzzed amount: refused.
    function testFuzz_announceAuditConfig_revertsBeyondEveryLimit(uint8 which, uint256 x) public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        string memory reason;
        which = which % 8;
        if (which == 0) {
            c.validatorsPerAudit = uint8(bound(x, 0, MIN_VALIDATORS_PER_AUDIT - 1));
            reason = "validatorsPerAudit";
        } else if (which == 1) {
            // below the minimum quorum, or no majority of the seats, or more than the seats
            uint256 pick = x % 3;
            c.quorum = pick == 0 ? 1 : pick == 1 ? 1 : VALIDATORS_PER_AUDIT + 1;
            if (pick == 1) {
                c.validatorsPerAudit = 4;
                c.quorum = 2;
            }
            reason = "quorum";
        } else if (which == 2) {
            c.commitWindow = uint64(bound(x, 0, MIN_COMMIT_WINDOW - 1));
            reason = "commitWindow";
        } else if (which == 3) {
            c.revealWindow = uint64(bound(x, 0, MIN_REVEAL_WINDOW - 1));
            reason = "revealWindow";
        } else if (which == 4) {
            c.finderShareBps = uint16(bound(x, MAX_FINDER_SHARE_BPS + 1, type(uint16).max));
            reason = "finderShareBps";
        } else if (which == 5) {
            c.workerSlashAmount = bound(x, WORKER_MIN * MAX_WORKER_SLASH_BPS / 10_000 + 1, type(uint256).max);
            reason = "workerSlashAmount";
        } else if (which == 6) {
            c.falseAttestationSlash = bound(x, VALIDATOR_MIN * MAX_FALSE_SLASH_BPS / 10_000 + 1, type(uint256).max);
            reason = "falseAttestationSlash";
        } else {
            c.auditRateBps = uint16(bound(x, 10_001, type(uint16).max));
            reason = "auditRateBps";
        }
        vm.expectRevert(abi.encodeWithSelector(IAudit.InvalidAuditConfig.selector, reason));
        vm.prank(owner);
        grid.announceAuditConfig(c);
        vm.expectRevert(abi.encodeWithSelector(IAudit.InvalidAuditConfig.selector, reason));
        vm.prank(owner);
        grid.setAuditConfig(c);
    }

    function testFuzz_setAuditConfig_revertsUnlessAnnounced(uint256 slash) public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.workerSlashAmount = bound(slash, 0, WORKER_MIN * MAX_WORKER_SLASH_BPS / 10_000);
        bytes32 id = grid.hashAuditConfig(c);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, id));
        vm.prank(owner);
        grid.setAuditConfig(c);
    }

    function testFuzz_setAuditConfig_revertsBeforeTheDelay(uint64 wait) public {
        wait = uint64(bound(wait, 0, CUT_DELAY - 1));
        IAudit.AuditConfig memory c = _maxLegalConfig();
        vm.prank(owner);
        bytes32 id = grid.announceAuditConfig(c);
        uint64 executableAt = uint64(block.timestamp) + CUT_DELAY;
        vm.warp(block.timestamp + wait);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotReady.selector, id, executableAt));
        vm.prank(owner);
        grid.setAuditConfig(c);
    }

    function testFuzz_setAuditConfig_lapsesAfterTheWindow(uint64 late) public {
        late = uint64(bound(late, 1, 3650 days));
        IAudit.AuditConfig memory c = _maxLegalConfig();
        vm.prank(owner);
        bytes32 id = grid.announceAuditConfig(c);
        uint64 expiresAt = uint64(block.timestamp) + CUT_DELAY + CHANGE_WINDOW;
        vm.warp(uint256(expiresAt) + late);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeExpired.selector, id, expiresAt));
        vm.prank(owner);
        grid.setAuditConfig(c);
    }

    function test_setRandomnessSource_revertsUnlessAnnouncedAndMatured() public {
        address rigged = address(new RiggedRandomness());
        bytes32 id = grid.hashRandomnessSource(rigged);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, id));
        vm.prank(owner);
        grid.setRandomnessSource(rigged);

        vm.prank(owner);
        grid.announceRandomnessSource(rigged);
        vm.warp(block.timestamp + CUT_DELAY - 1);
        vm.expectRevert(
            abi.encodeWithSelector(ICutTimelock.ChangeNotReady.selector, id, uint64(block.timestamp + 1))
        );
        vm.prank(owner);
        grid.setRandomnessSource(rigged);
        assertEq(grid.randomnessSource(), address(randomness));
    }

    /// With unbondDelay < cutDelay (enforced at init), a worker and a validator who start leaving at any
    /// moment in [announcement, executableAt - unbondDelay) hold their whole stake before the harshest legal
    /// config can be applied.
    function testFuzz_announcedConfig_stakersLeaveBeforeItApplies(uint64 reactAfter) public {
        assertLe(uint256(grid.workerUnbondDelay()) + 60, grid.cutDelay());
        reactAfter = uint64(bound(reactAfter, 0, CUT_DELAY - UNBOND_DELAY - 1));
        IAudit.AuditConfig memory c = _maxLegalConfig();
        vm.prank(owner);
        bytes32 id = grid.announceAuditConfig(c);
        (uint64 executableAt,) = grid.pendingChange(id);

        vm.warp(block.timestamp + reactAfter);
        vm.prank(worker);
        grid.requestWorkerUnbond(WORKER_BOND);
        vm.prank(v1);
        grid.requestValidatorUnbond(VALIDATOR_MIN);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotReady.selector, id, executableAt));
        vm.prank(owner);
        grid.setAuditConfig(c);

        vm.warp(block.timestamp + UNBOND_DELAY);
        assertLt(block.timestamp, executableAt);
        vm.prank(worker);
        grid.withdrawWorkerBond();
        vm.prank(v1);
        grid.withdrawValidatorBond();
        assertEq(aipg.balanceOf(worker), WORKER_BOND);
        assertEq(aipg.balanceOf(v1), VALIDATOR_MIN);

        vm.warp(executableAt);
        vm.prank(owner);
        grid.setAuditConfig(c);
        assertEq(aipg.balanceOf(worker), WORKER_BOND);
        assertEq(aipg.balanceOf(v1), VALIDATOR_MIN);
    }

    /// Even after the delay, with every seat held by validators of its own, the owner takes at most the
    /// deployment's cap per FAIL (20% of the worker minimum here), never the bond.
    function testFuzz_ownerWithEverySeat_slashPerFailStaysWithinLimit(uint256 slash, uint16 finder) public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.workerSlashAmount = slash;
        c.finderShareBps = finder;
        uint256 cap = WORKER_MIN * MAX_WORKER_SLASH_BPS / 10_000;
        if (slash > cap || finder > MAX_FINDER_SHARE_BPS) {
            vm.expectRevert();
            vm.prank(owner);
            grid.announceAuditConfig(c);
            c.workerSlashAmount = bound(slash, 0, cap);
            c.finderShareBps = uint16(bound(finder, 0, MAX_FINDER_SHARE_BPS));
        }
        _setConfig(c);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        IAudit.Vote f = IAudit.Vote.Fail;
        _vote(batchId, rs, 0, _three(v1, v2, v3), _threeVotes(f, f, f));
        grid.finalize(_leaf(rs[0]));
        assertLe(WORKER_BOND - _workerStake(worker), cap);
        assertEq(WORKER_BOND - _workerStake(worker), c.workerSlashAmount);
        uint256 finders = grid.earningsOf(v1) + grid.earningsOf(v2) + grid.earningsOf(v3);
        assertLe(finders, c.workerSlashAmount * MAX_FINDER_SHARE_BPS / 10_000);
    }

    // ---------------------------------------------------------------- every owner-only selector

    function _ownerOnlySelectors() internal pure returns (bytes4[] memory s) {
        s = new bytes4[](15);
        s[0] = IDiamondCut.diamondCut.selector;
        s[1] = ICutTimelock.announceDiamondCut.selector;
        s[2] = ICutTimelock.cancelChange.selector;
        s[3] = IERC173.transferOwnership.selector;
        s[4] = IPausable.pause.selector;
        s[5] = IPausable.unpause.selector;
        s[6] = IModelRegistry.registerModel.selector;
        s[7] = IModelRegistry.setModelRates.selector;
        s[8] = IModelRegistry.setModelActive.selector;
        s[9] = IModelRegistry.setConfidentialPremium.selector;
        s[10] = IAudit.setWorkerAuditRate.selector;
        s[11] = IAudit.announceAuditConfig.selector;
        s[12] = IAudit.setAuditConfig.selector;
        s[13] = IAudit.announceRandomnessSource.selector;
        s[14] = IAudit.setRandomnessSource.selector;
    }

    function _isIn(bytes4[] memory xs, bytes4 x) internal pure returns (bool) {
        for (uint256 i; i < xs.length; ++i) {
            if (xs[i] == x) return true;
        }
        return false;
    }

    /// Every selector the diamond serves, called by a stranger: exactly these 15 answer `NotOwner`. So the
    /// list the next tests walk through is the whole of the owner's power.
    function test_ownerOnlySelectors_areExactlyTheGovernanceSet() public {
        bytes4[] memory expected = _ownerOnlySelectors();
        IDiamondLoupe.Facet[] memory f = grid.facets();
        bytes memory notOwner = abi.encodeWithSelector(IERC173.NotOwner.selector, stranger);
        uint256 found;
        for (uint256 i; i < f.length; ++i) {
            for (uint256 j; j < f[i].functionSelectors.length; ++j) {
                bytes4 sel = f[i].functionSelectors[j];
                uint256 snap = vm.snapshotState();
                vm.prank(stranger);
                (bool ok, bytes memory ret) = address(grid).call(abi.encodePacked(sel, new bytes(32 * 40)));
                vm.revertToState(snap);
                bool ownerOnly = !ok && keccak256(ret) == keccak256(notOwner);
                assertEq(ownerOnly, _isIn(expected, sel), vm.toString(abi.encodePacked(sel)));
                if (ownerOnly) ++found;
            }
        }
        assertEq(found, expected.length);
    }

    /// @dev The owner's hostile calls, one per owner-only selector, made the moment it wants them.
    function _hostileOwnerCalls(address drainInit, address rigged) internal view returns (bytes[] memory calls) {
        IDiamond.FacetCut[] memory noCut = new IDiamond.FacetCut[](0);
        bytes memory drainData = abi.encodeCall(DrainInit.drain, (address(aipg), owner));
        IModelRegistry.RateCard memory rates =
            IModelRegistry.RateCard({inputPerMTokens: type(uint64).max, outputPerMTokens: 1, perMegapixelStep: 0});
        calls = new bytes[](15);
        calls[0] = abi.encodeCall(ICutTimelock.announceDiamondCut, (noCut, drainInit, drainData));
        calls[1] = abi.encodeCall(IDiamondCut.diamondCut, (noCut, drainInit, drainData));
        calls[2] = abi.encodeCall(IAudit.announceAuditConfig, (_maxLegalConfig()));
        calls[3] = abi.encodeCall(IAudit.setAuditConfig, (_maxLegalConfig()));
        calls[4] = abi.encodeCall(IAudit.announceRandomnessSource, (rigged));
        calls[5] = abi.encodeCall(IAudit.setRandomnessSource, (rigged));
        calls[6] = abi.encodeCall(IAudit.setWorkerAuditRate, (worker, 10_000));
        calls[7] = abi.encodeCall(IPausable.pause, ());
        calls[8] = abi.encodeCall(
            IModelRegistry.registerModel,
            ("evil", IModelRegistry.ModelKind.Text, bytes32(uint256(1)), bytes32(uint256(2)), 1, 1, rates)
        );
        calls[9] = abi.encodeCall(
            IModelRegistry.setModelRates,
            (keccak256(abi.encode("evil", bytes32(uint256(1)))), rates)
        );
        calls[10] = abi.encodeCall(
            IModelRegistry.setModelActive, (keccak256(abi.encode("evil", bytes32(uint256(1)))), false)
        );
        calls[11] = abi.encodeCall(IModelRegistry.setConfidentialPremium, (10_000));
        calls[12] = abi.encodeCall(ICutTimelock.cancelChange, (grid.hashAuditConfig(_maxLegalConfig())));
        calls[13] = abi.encodeCall(IERC173.transferOwnership, (attacker));
        calls[14] = abi.encodeCall(IPausable.unpause, ());
    }

    /// The owner fires every owner-only selector with the most hostile arguments at a fuzzed moment before
    /// the delay: not one booked amount (bonds, unbonding, deposit, earnings, pools, the diamond's balance)
    /// moves, and every exit still pays out in full.
    function testFuzz_ownerOnlySelectors_moveNoFundsBeforeTheDelay(uint64 wait) public {
        wait = uint64(bound(wait, 0, CUT_DELAY - 1));
        // earnings and pools exist: one settled batch
        _settle(_receipts(worker, 2));
        vm.prank(worker);
        grid.requestWorkerUnbond(WORKER_MIN); // some stake already unbonding
        Money memory before = _money();

        bytes[] memory calls = _hostileOwnerCalls(address(new DrainInit()), address(new RiggedRandomness()));
        bytes4[] memory covered = new bytes4[](calls.length);
        // announcements first, then the wait, then everything else
        for (uint256 i; i < calls.length; ++i) {
            covered[i] = bytes4(calls[i]);
            if (i == 0 || i == 2 || i == 4) {
                vm.prank(owner);
                (bool ok,) = address(grid).call(calls[i]);
                assertTrue(ok, "announcement");
            }
        }
        vm.warp(block.timestamp + wait);
        for (uint256 i; i < calls.length; ++i) {
            if (i == 0 || i == 2 || i == 4) continue;
            vm.prank(owner);
            (bool ok, bytes memory ret) = address(grid).call(calls[i]);
            if (i == 1 || i == 3 || i == 5) {
                assertFalse(ok, "a change applied before its delay");
                assertEq(bytes4(ret), ICutTimelock.ChangeNotReady.selector);
            }
            _assertSameMoney(before, _money());
        }
        bytes4[] memory all = _ownerOnlySelectors();
        for (uint256 i; i < all.length; ++i) {
            assertTrue(_isIn(covered, all[i]), "an owner-only selector is not exercised");
        }

        // every exit still pays in full
        _exitEverything();
    }

    /// @dev Worker, validators, payer and earner take everything out (works paused or not).
    function _exitEverything() internal {
        uint256 earned = grid.earningsOf(worker);
        uint256 deposit = grid.depositOf(payer).balance;
        vm.prank(worker);
        grid.withdrawEarnings();
        uint256 active = grid.workerBond(worker).amount;
        vm.prank(worker);
        grid.requestWorkerUnbond(active);
        vm.prank(v1);
        grid.requestValidatorUnbond(VALIDATOR_MIN);
        vm.prank(payer);
        grid.requestDepositWithdrawal(deposit);
        vm.warp(block.timestamp + (UNBOND_DELAY > DEPOSIT_DELAY ? UNBOND_DELAY : DEPOSIT_DELAY));
        vm.prank(worker);
        grid.withdrawWorkerBond();
        vm.prank(v1);
        grid.withdrawValidatorBond();
        vm.prank(payer);
        grid.withdrawDeposit();
        assertEq(aipg.balanceOf(worker), WORKER_BOND + earned);
        assertEq(aipg.balanceOf(v1), VALIDATOR_MIN);
        assertEq(aipg.balanceOf(payer), deposit);
    }

    // ---------------------------------------------------------------- pending owner

    /// Until it accepts, a pending owner is a stranger to every owner-only selector.
    function testFuzz_pendingOwner_hasNoPowerBeforeAccepting(address pending) public {
        vm.assume(pending != owner && pending != address(0));
        vm.prank(owner);
        grid.transferOwnership(pending);
        Money memory before = _money();
        bytes[] memory calls = _hostileOwnerCalls(address(new DrainInit()), address(new RiggedRandomness()));
        bytes memory notOwner = abi.encodeWithSelector(IERC173.NotOwner.selector, pending);
        for (uint256 i; i < calls.length; ++i) {
            vm.prank(pending);
            (bool ok, bytes memory ret) = address(grid).call(calls[i]);
            assertFalse(ok);
            assertEq(ret, notOwner);
        }
        _assertSameMoney(before, _money());
        assertEq(grid.owner(), owner);
        assertEq(grid.pendingOwner(), pending);

        // accepted, it is an owner like any other: still nothing immediate
        vm.prank(pending);
        grid.acceptOwnership();
        vm.expectRevert(
            abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, grid.hashAuditConfig(_maxLegalConfig()))
        );
        vm.prank(pending);
        grid.setAuditConfig(_maxLegalConfig());
    }

    // ---------------------------------------------------------------- pause never blocks an exit

    /// Paused at a fuzzed moment, with an audit under way: every exit (unbond, withdraw bond, deposit
    /// withdrawal, earnings, lowering a cap) and the audit itself (commit, reveal, finalize) still work; only
    /// new money and settlements stop.
    function testFuzz_pause_neverBlocksAnExit(uint64 at) public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        vm.warp(block.timestamp + bound(at, 0, COMMIT_WINDOW - 1));
        vm.prank(owner);
        grid.pause();

        IAudit.Vote p = IAudit.Vote.Pass;
        _vote(batchId, rs, 0, _three(v1, v2, v3), _threeVotes(p, p, p));
        grid.finalize(_leaf(rs[0]));
        assertEq(uint8(grid.getAudit(_leaf(rs[0])).verdict), uint8(IAudit.Verdict.Pass));

        vm.prank(payer);
        grid.decreaseGatewayCap(gateway, type(uint256).max);
        assertEq(grid.gatewayAllowance(payer, gateway), 0);
        _exitEverything();
        // PASS rewards, paid out of the batch's validator share, are withdrawn while paused too
        uint256 rewards = grid.earningsOf(v2) + grid.earningsOf(v3);
        assertGt(rewards, 0);
        address[2] memory others = [v2, v3];
        for (uint256 i; i < 2; ++i) {
            if (grid.earningsOf(others[i]) == 0) continue;
            vm.prank(others[i]);
            grid.withdrawEarnings();
        }
        assertEq(aipg.balanceOf(v2) + aipg.balanceOf(v3), rewards);

        // what pause does stop: new bonds, deposits and settlements
        _fund(stranger, VALIDATOR_MIN);
        vm.expectRevert(IPausable.EnforcedPause.selector);
        vm.prank(stranger);
        grid.bondValidator(VALIDATOR_MIN, address(0));
        vm.expectRevert(IPausable.EnforcedPause.selector);
        vm.prank(stranger);
        grid.deposit(1);
    }
}
