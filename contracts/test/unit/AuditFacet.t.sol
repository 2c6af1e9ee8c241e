// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm, VmSafe} from "forge-std/Vm.sol";
import {AuditFixture} from "../utils/AuditFixture.sol";
import {ReceiptTree} from "../utils/ReceiptTree.sol";
import {GridDiamond} from "../../src/GridDiamond.sol";
import {IAudit, IRandomnessSource} from "../../src/interfaces/IAudit.sol";
import {IBonding} from "../../src/interfaces/IBonding.sol";
import {ICommon} from "../../src/interfaces/ICommon.sol";
import {IDiamond} from "../../src/interfaces/IDiamond.sol";
import {IERC173} from "../../src/interfaces/IERC173.sol";
import {IGrid} from "../../src/interfaces/IGrid.sol";
import {IGridInit} from "../../src/interfaces/IGridInit.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {LibAudit} from "../../src/libraries/LibAudit.sol";
import {FutureBlockRandomness} from "../../src/randomness/FutureBlockRandomness.sol";

/// @notice A source that is always ready with a fixed value (0 included).
contract FixedRandomness is IRandomnessSource {
    bytes32 internal immutable value;

    constructor(bytes32 value_) {
        value = value_;
    }

    function randomness(uint256, uint64, uint64) external view returns (bool, bytes32) {
        return (true, value);
    }
}

/// @notice A source that tries to write state when asked: the diamond's STATICCALL makes that revert.
contract StatefulRandomness {
    uint256 public calls;

    function randomness(uint256, uint64, uint64) external returns (bool, bytes32) {
        ++calls;
        return (true, keccak256("stateful"));
    }
}

/// @notice AuditFacet and LibAudit: every function, every revert, every event, the verdict arithmetic.
contract AuditFacetTest is AuditFixture {
    uint16 internal constant BPS = 10_000;

    function setUp() public override {
        super.setUp();
        // A first batch (fake root, never audited) fills the validator pool: 15% of 100 AIPG.
        IPayments.PayerDebit[] memory debits = new IPayments.PayerDebit[](1);
        debits[0] = IPayments.PayerDebit({payer: payer, amount: 100e18});
        IPayments.WorkerCredit[] memory credits = new IPayments.WorkerCredit[](1);
        credits[0] = IPayments.WorkerCredit({worker: worker, gross: 100e18});
        vm.prank(gateway);
        grid.settle(keccak256("warm"), 1, debits, credits);
        assertEq(grid.validatorPool(), 15e18);
    }

    // ================================================================ deployment

    function test_init_storesAuditConfigAndSource() public view {
        IAudit.AuditConfig memory c = grid.auditConfig();
        assertEq(c.auditRateBps, AUDIT_RATE_BPS);
        assertEq(c.validatorsPerAudit, VALIDATORS_PER_AUDIT);
        assertEq(c.quorum, QUORUM);
        assertEq(c.attestWindow, ATTEST_WINDOW);
        assertEq(c.randomnessDelay, RANDOMNESS_DELAY);
        assertEq(c.workerSlashAmount, WORKER_SLASH);
        assertEq(c.falseAttestationSlash, FALSE_ATTESTATION_SLASH);
        assertEq(c.finderShareBps, FINDER_SHARE_BPS);
        assertEq(c.passReward, PASS_REWARD);
        assertEq(grid.randomnessSource(), address(randomness));
        assertEq(grid.workerAuditRate(worker), 0);
    }

    function test_init_emitsConfigAndSource() public {
        _deployFacets();
        IGridInit.InitArgs memory args = _defaultInitArgs();
        vm.expectEmit();
        emit IAudit.AuditConfigUpdated(args.audit);
        vm.expectEmit();
        emit IAudit.RandomnessSourceSet(address(randomness));
        _deployDiamond(args);
    }

    function _expectInitRevert(IGridInit.InitArgs memory args, string memory reason) internal {
        _deployFacets();
        IDiamond.FacetCut[] memory cut = _initialCut();
        bytes memory data = abi.encodeCall(IGridInit.init, (args));
        vm.expectRevert(abi.encodeWithSelector(IGridInit.InvalidInit.selector, reason));
        new GridDiamond(owner, cut, address(diamondInit), data);
    }

    function test_init_revertsOnBadAuditConfig() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.audit.auditRateBps = 10_001;
        _expectInitRevert(a, "auditRateBps");
        a = _defaultInitArgs();
        a.audit.validatorsPerAudit = 0;
        _expectInitRevert(a, "validatorsPerAudit");
        a = _defaultInitArgs();
        a.audit.quorum = 0;
        _expectInitRevert(a, "quorum");
        a = _defaultInitArgs();
        a.audit.quorum = VALIDATORS_PER_AUDIT + 1;
        _expectInitRevert(a, "quorum");
        a = _defaultInitArgs();
        a.audit.attestWindow = 0;
        _expectInitRevert(a, "attestWindow");
        a = _defaultInitArgs();
        a.audit.finderShareBps = 10_001;
        _expectInitRevert(a, "finderShareBps");
    }

    function test_init_revertsWhenRandomnessSourceHasNoCode() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.randomnessSource = address(0);
        _expectInitRevert(a, "randomnessSource");
        a.randomnessSource = makeAddr("eoa");
        _expectInitRevert(a, "randomnessSource");
    }

    function test_init_acceptsBoundaryConfig() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.audit.auditRateBps = 10_000;
        a.audit.validatorsPerAudit = 1;
        a.audit.quorum = 1;
        a.audit.attestWindow = 1;
        a.audit.finderShareBps = 10_000;
        a.audit.randomnessDelay = 0;
        IGrid g = _deployGrid(a);
        assertEq(g.auditConfig().quorum, 1);
    }

    function test_storageSlot_matchesErc7201() public pure {
        bytes32 expected = keccak256(abi.encode(uint256(keccak256(bytes("aipg.storage.Audit"))) - 1))
            & ~bytes32(uint256(0xff));
        assertEq(LibAudit.STORAGE_SLOT, expected);
    }

    function test_selectors_routeToAuditFacet_andAreNotImmutable() public view {
        bytes4[] memory s = _auditSelectors();
        bytes4[] memory immutables = diamondInit.immutableSelectors();
        for (uint256 i; i < s.length; ++i) {
            assertEq(grid.facetAddress(s[i]), address(auditFacet));
            for (uint256 j; j < immutables.length; ++j) {
                assertTrue(immutables[j] != s[i], "audit selector marked immutable");
            }
        }
    }

    /// @dev Audits lock nothing: with the whole facet removed (after the cut delay), an open audit, a pending
    /// finder reward and every bond still leave through the immutable exits.
    function test_removingAuditFacet_trapsNoStakeAndNoReward() public {
        (uint256 a, IAudit.Receipt[] memory ra) = _fixedBatch(2);
        _attest(v1, a, ra, 0, IAudit.Vote.Fail);
        _attest(v2, a, ra, 0, IAudit.Vote.Fail);
        _attest(v3, a, ra, 1, IAudit.Vote.Fail); // stays open forever once the facet is gone
        _closeWindow(a);
        grid.finalize(_leaf(ra[0]));
        uint256 reward = grid.earningsOf(v1);
        assertGt(reward, 0);

        _executeCut(_singleCut(address(0), IDiamond.FacetCutAction.Remove, _auditSelectors()), address(0), "");
        vm.expectRevert(abi.encodeWithSelector(IGrid.FunctionNotFound.selector, IAudit.finalize.selector));
        grid.finalize(_leaf(ra[1]));

        uint256 workerLeft = _workerStake(worker);
        vm.prank(worker);
        grid.requestWorkerUnbond(workerLeft);
        vm.prank(v1);
        grid.requestValidatorUnbond(VALIDATOR_MIN);
        vm.warp(block.timestamp + UNBOND_DELAY);
        uint256 before = aipg.balanceOf(worker);
        vm.prank(worker);
        grid.withdrawWorkerBond();
        assertEq(aipg.balanceOf(worker) - before, workerLeft);
        before = aipg.balanceOf(v1);
        vm.startPrank(v1);
        grid.withdrawValidatorBond();
        grid.withdrawEarnings();
        vm.stopPrank();
        assertEq(aipg.balanceOf(v1) - before, VALIDATOR_MIN + reward);
    }

    // ================================================================ receiptLeaf

    function test_receiptLeaf_isTheStandardTreeLeaf() public {
        IAudit.Receipt memory r = _receipt(worker);
        bytes32 expected = keccak256(
            bytes.concat(
                keccak256(
                    abi.encode(
                        r.jobId,
                        r.gateway,
                        r.payer,
                        r.worker,
                        r.modelId,
                        r.requestHash,
                        r.outputHash,
                        r.inputUnits,
                        r.outputUnits,
                        r.fee,
                        r.completedAt,
                        r.confidential
                    )
                )
            )
        );
        assertEq(grid.receiptLeaf(r), expected);
        assertEq(ReceiptTree.leaf(r), expected);
        r.confidential = true;
        assertTrue(grid.receiptLeaf(r) != expected);
    }

    // ================================================================ fixRandomness

    function test_fixRandomness_storesRandomnessAndDeadline() public {
        uint256 batchId = _settle(_receipts(worker, 2));
        uint64 settledBlock = grid.getBatch(batchId).settledBlock;
        vm.roll(settledBlock + RANDOMNESS_DELAY + 1);
        bytes32 expected = keccak256(abi.encode(blockhash(settledBlock + RANDOMNESS_DELAY), batchId));
        assertTrue(expected != bytes32(0));
        uint64 deadline = uint64(block.timestamp) + ATTEST_WINDOW;

        vm.expectEmit(address(grid));
        emit IAudit.AuditRandomnessFixed(batchId, expected, deadline);
        vm.prank(makeAddr("anyone"));
        grid.fixRandomness(batchId);

        IAudit.BatchAudit memory b = grid.batchAudit(batchId);
        assertEq(b.randomness, expected);
        assertEq(b.fixedAt, block.timestamp);
        assertEq(b.deadline, deadline);
    }

    function test_fixRandomness_revertsWhenUnknownBatch() public {
        vm.expectRevert(abi.encodeWithSelector(IAudit.UnknownBatch.selector, 0));
        grid.fixRandomness(0);
        vm.expectRevert(abi.encodeWithSelector(IAudit.UnknownBatch.selector, 99));
        grid.fixRandomness(99);
    }

    function test_fixRandomness_revertsUntilTheDelayedBlockIsSealed() public {
        uint256 batchId = _settle(_receipts(worker, 1));
        uint64 settledBlock = grid.getBatch(batchId).settledBlock;
        for (uint256 b = settledBlock; b <= settledBlock + RANDOMNESS_DELAY; ++b) {
            vm.roll(b);
            vm.expectRevert(abi.encodeWithSelector(IAudit.RandomnessNotReady.selector, batchId));
            grid.fixRandomness(batchId);
        }
        vm.roll(settledBlock + RANDOMNESS_DELAY + 1);
        grid.fixRandomness(batchId);
    }

    function test_fixRandomness_revertsWhenAlreadyFixed() public {
        (uint256 batchId,) = _fixedBatch(1);
        bytes32 r = grid.batchAudit(batchId).randomness;
        vm.roll(block.number + 10);
        vm.expectRevert(abi.encodeWithSelector(IAudit.RandomnessAlreadyFixed.selector, batchId));
        grid.fixRandomness(batchId);
        assertEq(grid.batchAudit(batchId).randomness, r);
    }

    function test_fixRandomness_lateFix_usesNewestAlignedBlock() public {
        uint256 batchId = _settle(_receipts(worker, 1));
        uint256 target = grid.getBatch(batchId).settledBlock + RANDOMNESS_DELAY;
        vm.roll(target + 1000);
        // newest target + m * 256 below the current block
        uint256 source = target + 3 * 256;
        assertLt(source, block.number);
        assertGe(source, block.number - 256);
        grid.fixRandomness(batchId);
        assertEq(grid.batchAudit(batchId).randomness, keccak256(abi.encode(blockhash(source), batchId)));
    }

    function test_fixRandomness_revertsWhenSourceReturnsZero() public {
        FixedRandomness zero = new FixedRandomness(bytes32(0));
        vm.prank(owner);
        grid.setRandomnessSource(address(zero));
        uint256 batchId = _settle(_receipts(worker, 1));
        vm.expectRevert(abi.encodeWithSelector(IAudit.RandomnessNotReady.selector, batchId));
        grid.fixRandomness(batchId);
    }

    function test_fixRandomness_staticCallsTheSource() public {
        StatefulRandomness stateful = new StatefulRandomness();
        vm.prank(owner);
        grid.setRandomnessSource(address(stateful));
        uint256 batchId = _settle(_receipts(worker, 1));
        vm.expectRevert(); // a state change inside a STATICCALL fails without data
        grid.fixRandomness(batchId);
        assertEq(stateful.calls(), 0);
        assertEq(grid.batchAudit(batchId).randomness, bytes32(0));
    }

    function test_fixRandomness_worksWhilePaused() public {
        uint256 batchId = _settle(_receipts(worker, 1));
        vm.prank(owner);
        grid.pause();
        _fix(batchId);
        assertTrue(grid.batchAudit(batchId).randomness != bytes32(0));
    }

    // ================================================================ FutureBlockRandomness

    function test_futureBlock_readyOnlyAfterTheDelayedBlock() public {
        vm.roll(100);
        (bool ready, bytes32 value) = randomness.randomness(1, 98, 2);
        assertFalse(ready);
        assertEq(value, bytes32(0));
        (ready, value) = randomness.randomness(1, 97, 2);
        assertTrue(ready);
        assertEq(value, keccak256(abi.encode(blockhash(99), uint256(1))));
        (, bytes32 other) = randomness.randomness(2, 97, 2);
        assertTrue(other != value, "batch id mixed in");
    }

    function testFuzz_futureBlock_lateValueStaysInWindowAndAligned(
        uint64 settledBlock,
        uint64 delay,
        uint256 late
    ) public {
        settledBlock = uint64(bound(settledBlock, 1, 1e9));
        delay = uint64(bound(delay, 0, 100));
        late = bound(late, 1, 10_000);
        uint256 target = uint256(settledBlock) + delay;
        vm.roll(target + late);
        uint256 expectedSource = late <= 256 ? target : target + (late - 1) / 256 * 256;
        assertLt(expectedSource, block.number);
        assertGe(expectedSource + 256, block.number);
        assertEq((expectedSource - target) % 256, 0);
        (bool ready, bytes32 value) = randomness.randomness(7, settledBlock, delay);
        assertTrue(ready);
        assertEq(value, keccak256(abi.encode(blockhash(expectedSource), uint256(7))));
    }

    // ================================================================ selection

    function test_isAudited_falseUntilFixed() public {
        IAudit.Receipt[] memory rs = _receipts(worker, 1);
        uint256 batchId = _settle(rs);
        assertFalse(grid.isAudited(batchId, _leaf(rs[0]), worker));
        _fix(batchId);
        assertTrue(grid.isAudited(batchId, _leaf(rs[0]), worker));
    }

    function test_isAudited_noneAtRateZero() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.auditRateBps = 0;
        _setConfig(c);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(4);
        for (uint256 i; i < rs.length; ++i) {
            assertFalse(grid.isAudited(batchId, _leaf(rs[i]), worker));
        }
        vm.expectRevert(abi.encodeWithSelector(IAudit.NotAudited.selector, _leaf(rs[0])));
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
    }

    function test_isAudited_isTheDocumentedFormula() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.auditRateBps = 5_000;
        _setConfig(c);
        (uint256 batchId,) = _fixedBatch(1);
        bytes32 r = grid.batchAudit(batchId).randomness;
        for (uint256 i; i < 64; ++i) {
            bytes32 leaf = keccak256(abi.encode("leaf", i));
            bool expected = uint256(keccak256(abi.encode(r, leaf))) % BPS < 5_000;
            assertEq(grid.isAudited(batchId, leaf, worker), expected);
        }
    }

    /// forge-config: default.fuzz.runs = 16
    function testFuzz_selectionRate_followsAuditRate(uint16 rate, uint256 salt) public {
        rate = uint16(bound(rate, 0, BPS));
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.auditRateBps = rate;
        _setConfig(c);
        (uint256 batchId,) = _fixedBatch(1);
        uint256 n = 2_000;
        uint256 audited;
        for (uint256 i; i < n; ++i) {
            if (grid.isAudited(batchId, keccak256(abi.encode(salt, i)), worker)) ++audited;
        }
        // within 5 standard deviations of n·p (sd <= sqrt(n / 4) ~ 22.4): a false alarm is ~1e-6
        uint256 expected = n * rate / BPS;
        uint256 tolerance = 5 * 23;
        assertApproxEqAbs(audited, expected, tolerance);
        if (rate == 0) assertEq(audited, 0);
        if (rate == BPS) assertEq(audited, n);
    }

    function test_workerRate_isMaxOfDefaultAndOwn() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.auditRateBps = 2_000;
        _setConfig(c);
        vm.prank(owner);
        grid.setWorkerAuditRate(worker, 1_000); // below the default: the default still applies
        (uint256 batchId,) = _fixedBatch(1);
        bytes32 r = grid.batchAudit(batchId).randomness;
        bytes32 leaf;
        for (uint256 i;; ++i) {
            leaf = keccak256(abi.encode("between", i));
            uint256 h = uint256(keccak256(abi.encode(r, leaf))) % BPS;
            if (h >= 1_000 && h < 2_000) break;
        }
        assertTrue(grid.isAudited(batchId, leaf, worker));
    }

    function test_setWorkerAuditRate_appliesFromTheNextFixOnly() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.auditRateBps = 0;
        _setConfig(c);
        IAudit.Receipt[] memory ra = _receipts(worker, 1);
        uint256 a = _settle(ra);
        _fix(a);
        IAudit.Receipt[] memory rb = _receipts(worker, 1);
        uint256 b = _settle(rb);

        vm.expectEmit(address(grid));
        emit IAudit.WorkerAuditRateSet(worker, BPS);
        vm.prank(owner);
        grid.setWorkerAuditRate(worker, BPS);
        assertEq(grid.workerAuditRate(worker), BPS);

        _fix(b);
        assertFalse(grid.isAudited(a, _leaf(ra[0]), worker), "batch fixed before keeps its rate");
        assertTrue(grid.isAudited(b, _leaf(rb[0]), worker), "batch fixed after uses the new rate");
        assertFalse(grid.isAudited(b, _leaf(rb[0]), makeAddr("other worker")), "only that worker");
        _attest(v1, b, rb, 0, IAudit.Vote.Pass);
    }

    function test_setWorkerAuditRate_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, address(this)));
        grid.setWorkerAuditRate(worker, 5_000);
        vm.startPrank(owner);
        vm.expectRevert(ICommon.ZeroAddress.selector);
        grid.setWorkerAuditRate(address(0), 5_000);
        vm.expectRevert(abi.encodeWithSelector(IAudit.InvalidAuditConfig.selector, "rateBps"));
        grid.setWorkerAuditRate(worker, 10_001);
        grid.setWorkerAuditRate(worker, 5_000);
        vm.expectRevert(abi.encodeWithSelector(IAudit.RateCanOnlyRise.selector, 5_000, 5_000));
        grid.setWorkerAuditRate(worker, 5_000);
        vm.expectRevert(abi.encodeWithSelector(IAudit.RateCanOnlyRise.selector, 5_000, 4_000));
        grid.setWorkerAuditRate(worker, 4_000);
        vm.stopPrank();
        assertEq(grid.workerAuditRate(worker), 5_000);
    }

    // ================================================================ assignment

    function test_assigned_emptyUntilFixed() public {
        IAudit.Receipt[] memory rs = _receipts(worker, 1);
        uint256 batchId = _settle(rs);
        assertEq(grid.assignedValidators(batchId, _leaf(rs[0])).length, 0);
        _fix(batchId);
        assertEq(grid.assignedValidators(batchId, _leaf(rs[0])).length, 3);
    }

    function test_assigned_allActiveWhenKCoversThem() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        address[] memory a = grid.assignedValidators(batchId, _leaf(rs[0]));
        assertEq(a.length, 3);
        assertTrue(_has(a, v1) && _has(a, v2) && _has(a, v3));
    }

    function test_assigned_fewerActiveThanK_assignsAll() public {
        vm.prank(v3);
        grid.requestValidatorUnbond(VALIDATOR_MIN); // leaves the active set (still slashable)
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        address[] memory a = grid.assignedValidators(batchId, _leaf(rs[0]));
        assertEq(a.length, 2);
        assertTrue(_has(a, v1) && _has(a, v2));
        vm.expectRevert(abi.encodeWithSelector(IAudit.NotAssigned.selector, v3, _leaf(rs[0])));
        _attest(v3, batchId, rs, 0, IAudit.Vote.Pass);
    }

    function test_assigned_noActiveValidators_isEmpty() public {
        address[3] memory vs = [v1, v2, v3];
        for (uint256 i; i < 3; ++i) {
            vm.prank(vs[i]);
            grid.requestValidatorUnbond(VALIDATOR_MIN);
        }
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        assertEq(grid.assignedValidators(batchId, _leaf(rs[0])).length, 0);
        vm.expectRevert(abi.encodeWithSelector(IAudit.NotAssigned.selector, v1, _leaf(rs[0])));
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
    }

    /// @dev The view is exactly the documented draw (weighted, without replacement, over activeValidators()).
    function test_assigned_isTheDocumentedDraw() public {
        _bondValidator(makeAddr("v4"), 3 * VALIDATOR_MIN);
        _bondValidator(makeAddr("v5"), 7 * VALIDATOR_MIN);
        _bondValidator(makeAddr("v6"), VALIDATOR_MIN + 1);
        (uint256 batchId,) = _fixedBatch(1);
        bytes32 r = grid.batchAudit(batchId).randomness;
        for (uint256 i; i < 50; ++i) {
            bytes32 leaf = keccak256(abi.encode("draw", i));
            address[] memory expected = _referenceDraw(r, leaf, VALIDATORS_PER_AUDIT);
            address[] memory got = grid.assignedValidators(batchId, leaf);
            assertEq(got.length, expected.length);
            for (uint256 j; j < got.length; ++j) {
                assertEq(got[j], expected[j]);
            }
        }
    }

    /// @dev Documented behaviour: the assignment follows live stakes, for the view and for attest alike.
    function test_assigned_followsLiveStakes() public {
        address v4 = makeAddr("v4");
        _bondValidator(v4, VALIDATOR_MIN);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        address[] memory before = grid.assignedValidators(batchId, leaf);
        assertEq(before.length, 3);
        // whoever is left out now gets in once another assigned validator leaves the active set
        address out = _missing(before, [v1, v2, v3, v4]);
        vm.expectRevert(abi.encodeWithSelector(IAudit.NotAssigned.selector, out, leaf));
        _attest(out, batchId, rs, 0, IAudit.Vote.Pass);
        vm.prank(before[0]);
        grid.requestValidatorUnbond(VALIDATOR_MIN);
        assertTrue(_has(grid.assignedValidators(batchId, leaf), out));
        _attest(out, batchId, rs, 0, IAudit.Vote.Pass);
        assertEq(uint8(grid.voteOf(leaf, out)), uint8(IAudit.Vote.Pass));
    }

    function testFuzz_assigned_distinctActiveValidators(uint256[6] memory stakes, uint8 k, uint256 salt)
        public
    {
        k = uint8(bound(k, 1, 12));
        address[] memory extra = new address[](6);
        for (uint256 i; i < 6; ++i) {
            extra[i] = makeAddr(string.concat("fuzz-validator-", vm.toString(i)));
            _bondValidator(extra[i], bound(stakes[i], VALIDATOR_MIN, 1_000 * VALIDATOR_MIN));
        }
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.validatorsPerAudit = k;
        c.quorum = 1;
        _setConfig(c);
        (uint256 batchId,) = _fixedBatch(1);
        address[] memory a = grid.assignedValidators(batchId, keccak256(abi.encode(salt)));
        assertEq(a.length, k < 9 ? k : 9);
        for (uint256 i; i < a.length; ++i) {
            assertTrue(grid.isActiveValidator(a[i]));
            for (uint256 j; j < i; ++j) {
                assertTrue(a[i] != a[j], "drawn twice");
            }
        }
    }

    /// @dev With k = 1, each validator is drawn about in proportion to its stake (10% / 20% / 70%).
    function test_assigned_weightedByStake() public {
        _fund(v2, VALIDATOR_MIN);
        vm.prank(v2);
        grid.increaseValidatorBond(VALIDATOR_MIN); // 20,000
        _fund(v3, 6 * VALIDATOR_MIN);
        vm.prank(v3);
        grid.increaseValidatorBond(6 * VALIDATOR_MIN); // 70,000
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.validatorsPerAudit = 1;
        c.quorum = 1;
        _setConfig(c);
        (uint256 batchId,) = _fixedBatch(1);
        uint256 n = 3_000;
        uint256[3] memory hits;
        for (uint256 i; i < n; ++i) {
            address a = grid.assignedValidators(batchId, keccak256(abi.encode("weighted", i)))[0];
            if (a == v1) ++hits[0];
            else if (a == v2) ++hits[1];
            else if (a == v3) ++hits[2];
        }
        assertEq(hits[0] + hits[1] + hits[2], n);
        // 5 standard deviations: sqrt(n p (1 - p)) = 16.4, 21.9, 25.1
        assertApproxEqAbs(hits[0], 300, 82);
        assertApproxEqAbs(hits[1], 600, 110);
        assertApproxEqAbs(hits[2], 2_100, 126);
    }

    // ================================================================ attest

    function test_attest_firstVoteOpensTheAudit() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(3);
        bytes32 leaf = _leaf(rs[1]);
        bytes32 evidence = keccak256("report");
        vm.expectEmit(address(grid));
        emit IAudit.Attested(batchId, leaf, v1, IAudit.Vote.Fail, evidence);
        vm.prank(v1);
        grid.attest(batchId, rs[1], _proof(rs, 1), IAudit.Vote.Fail, evidence);

        IAudit.AuditInfo memory a = grid.getAudit(leaf);
        assertEq(a.batchId, batchId);
        assertEq(a.worker, worker);
        assertEq(a.modelId, MODEL);
        assertEq(a.deadline, grid.batchAudit(batchId).deadline);
        assertEq(a.passVotes, 0);
        assertEq(a.failVotes, 1);
        assertEq(uint8(a.verdict), uint8(IAudit.Verdict.None));
        assertEq(a.slashed, 0);
        assertEq(uint8(grid.voteOf(leaf, v1)), uint8(IAudit.Vote.Fail));
        assertEq(uint8(grid.voteOf(leaf, v2)), uint8(IAudit.Vote.None));

        _attest(v2, batchId, rs, 1, IAudit.Vote.Pass);
        a = grid.getAudit(leaf);
        assertEq(a.passVotes, 1);
        assertEq(a.failVotes, 1);
        assertEq(grid.getAudit(_leaf(rs[0])).batchId, 0, "other leaves untouched");
    }

    function test_attest_asOperatorKey_countsForTheOwner() public {
        address hot = makeAddr("v1-hot");
        vm.prank(v1);
        grid.setValidatorOperator(hot);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        vm.expectEmit(address(grid));
        emit IAudit.Attested(batchId, leaf, v1, IAudit.Vote.Pass, keccak256(abi.encode("evidence", hot)));
        _attest(hot, batchId, rs, 0, IAudit.Vote.Pass);
        assertEq(uint8(grid.voteOf(leaf, v1)), uint8(IAudit.Vote.Pass));
        // the owner itself can still sign, but the bond has voted
        vm.expectRevert(abi.encodeWithSelector(IAudit.AlreadyAttested.selector, v1, leaf));
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
    }

    function test_attest_revertsWhenUnknownBatch() public {
        IAudit.Receipt[] memory rs = _receipts(worker, 1);
        vm.expectRevert(abi.encodeWithSelector(IAudit.UnknownBatch.selector, 42));
        _attest(v1, 42, rs, 0, IAudit.Vote.Fail);
    }

    function test_attest_revertsWhenRandomnessNotFixed() public {
        IAudit.Receipt[] memory rs = _receipts(worker, 1);
        uint256 batchId = _settle(rs);
        vm.expectRevert(abi.encodeWithSelector(IAudit.RandomnessNotFixed.selector, batchId));
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
    }

    function test_attest_acceptedUntilTheDeadlineInclusive() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        uint64 deadline = grid.batchAudit(batchId).deadline;
        vm.warp(deadline);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
        vm.warp(uint256(deadline) + 1);
        vm.expectRevert(abi.encodeWithSelector(IAudit.AttestWindowClosed.selector, deadline));
        _attest(v2, batchId, rs, 0, IAudit.Vote.Fail);
    }

    function test_attest_revertsOnVoteNone() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        vm.expectRevert(IAudit.InvalidVote.selector);
        _attest(v1, batchId, rs, 0, IAudit.Vote.None);
    }

    function test_attest_revertsOnVoteOutOfRange() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes memory data = abi.encodeCall(grid.attest, (batchId, rs[0], _proof(rs, 0), IAudit.Vote.Fail, 0));
        // head words: batchId, the 12 receipt fields, the proof's offset, then the vote (word 14)
        uint256 voteOffset = 4 + 32 * 14;
        data[voteOffset + 31] = bytes1(uint8(3));
        vm.prank(v1);
        (bool ok,) = address(grid).call(data);
        assertFalse(ok);
    }

    function test_attest_revertsOnBadProof() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(4);
        // another leaf's proof
        vm.expectRevert(IAudit.InvalidProof.selector);
        vm.prank(v1);
        grid.attest(batchId, rs[0], _proof(rs, 1), IAudit.Vote.Fail, 0);
        // a tampered receipt
        IAudit.Receipt memory tampered = rs[0];
        tampered.fee += 1;
        vm.expectRevert(IAudit.InvalidProof.selector);
        vm.prank(v1);
        grid.attest(batchId, tampered, _proof(rs, 0), IAudit.Vote.Fail, 0);
        // a receipt of another batch
        IAudit.Receipt[] memory others = _receipts(worker, 1);
        uint256 other = _settle(others);
        vm.expectRevert(IAudit.InvalidProof.selector);
        vm.prank(v1);
        grid.attest(batchId, others[0], _proof(others, 0), IAudit.Vote.Fail, 0);
        other;
    }

    function test_attest_revertsForAConfidentialReceipt() public {
        IAudit.Receipt[] memory rs = _receipts(worker, 2);
        rs[1].confidential = true;
        uint256 batchId = _settle(rs);
        _fix(batchId);
        assertTrue(grid.isAudited(batchId, _leaf(rs[1]), worker), "the view cannot tell from a leaf");
        vm.expectRevert(abi.encodeWithSelector(IAudit.NotAudited.selector, _leaf(rs[1])));
        _attest(v1, batchId, rs, 1, IAudit.Vote.Fail);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
    }

    function test_attest_revertsWhenCallerNotAssigned() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        address stranger = makeAddr("stranger");
        vm.expectRevert(abi.encodeWithSelector(IAudit.NotAssigned.selector, stranger, _leaf(rs[0])));
        _attest(stranger, batchId, rs, 0, IAudit.Vote.Fail);
        // a bonded worker is no validator
        vm.expectRevert(abi.encodeWithSelector(IAudit.NotAssigned.selector, worker, _leaf(rs[0])));
        _attest(worker, batchId, rs, 0, IAudit.Vote.Fail);
    }

    function test_attest_revertsWhenValidatorNotDrawn() public {
        address v4 = makeAddr("v4");
        _bondValidator(v4, VALIDATOR_MIN);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        address out = _missing(grid.assignedValidators(batchId, leaf), [v1, v2, v3, v4]);
        vm.expectRevert(abi.encodeWithSelector(IAudit.NotAssigned.selector, out, leaf));
        _attest(out, batchId, rs, 0, IAudit.Vote.Fail);
    }

    function test_attest_revertsOnSecondVote() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
        vm.expectRevert(abi.encodeWithSelector(IAudit.AlreadyAttested.selector, v1, _leaf(rs[0])));
        _attest(v1, batchId, rs, 0, IAudit.Vote.Pass);
        assertEq(grid.getAudit(_leaf(rs[0])).failVotes, 1);
    }

    function test_attest_revertsWhenLeafAuditedUnderAnotherBatch() public {
        (uint256 a, IAudit.Receipt[] memory ra) = _fixedBatch(1);
        IAudit.Receipt[] memory rb = new IAudit.Receipt[](2);
        rb[0] = ra[0]; // the same receipt settled again, in another tree
        rb[1] = _receipt(worker);
        uint256 b = _settle(rb);
        _fix(b);
        _attest(v1, a, ra, 0, IAudit.Vote.Fail);
        vm.expectRevert(abi.encodeWithSelector(IAudit.AuditedInOtherBatch.selector, _leaf(ra[0]), a));
        _attest(v2, b, rb, 0, IAudit.Vote.Fail);
    }

    function test_attest_worksWhilePaused() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        vm.prank(owner);
        grid.pause();
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Fail);
        _closeWindow(batchId);
        grid.finalize(_leaf(rs[0]));
        assertEq(uint8(grid.getAudit(_leaf(rs[0])).verdict), uint8(IAudit.Verdict.Fail));
    }

    // ================================================================ finalize: reverts

    function test_finalize_revertsWhenNobodyAttested() public {
        (, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        vm.warp(block.timestamp + 2 * ATTEST_WINDOW);
        vm.expectRevert(abi.encodeWithSelector(IAudit.NothingToFinalize.selector, _leaf(rs[0])));
        grid.finalize(_leaf(rs[0]));
        vm.expectRevert(abi.encodeWithSelector(IAudit.NothingToFinalize.selector, bytes32(0)));
        grid.finalize(bytes32(0));
    }

    function test_finalize_revertsWhileTheWindowIsOpen() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
        uint64 deadline = grid.batchAudit(batchId).deadline;
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(IAudit.AttestWindowOpen.selector, deadline));
        grid.finalize(_leaf(rs[0]));
        vm.warp(uint256(deadline) + 1);
        grid.finalize(_leaf(rs[0]));
    }

    function test_finalize_revertsWhenAlreadyFinalized() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Fail);
        _closeWindow(batchId);
        grid.finalize(_leaf(rs[0]));
        uint256 earned = grid.earningsOf(v1);
        uint256 stake = _workerStake(worker);
        vm.expectRevert(abi.encodeWithSelector(IAudit.AlreadyFinalized.selector, _leaf(rs[0])));
        grid.finalize(_leaf(rs[0]));
        assertEq(grid.earningsOf(v1), earned);
        assertEq(_workerStake(worker), stake);
    }

    // ================================================================ finalize: verdicts

    function test_finalize_unanimousFail() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(2);
        bytes32 leaf = _leaf(rs[0]);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Fail);
        _attest(v3, batchId, rs, 0, IAudit.Vote.Fail);
        _closeWindow(batchId);
        uint256 fees = grid.protocolFees();
        uint256 pool = grid.validatorPool();
        uint256 balance = aipg.balanceOf(address(grid));

        // 100 AIPG slashed: 50 to the finders, 16.666… each; the rest (50 AIPG + 2 wei of dust) to the treasury
        uint256 each = uint256(50e18) / 3;
        vm.expectEmit(address(grid));
        emit IBonding.BondSlashed(IBonding.Role.Worker, worker, WORKER_SLASH);
        vm.expectEmit(address(grid));
        emit IAudit.ValidatorRewarded(leaf, v1, each);
        vm.expectEmit(address(grid));
        emit IAudit.ValidatorRewarded(leaf, v2, each);
        vm.expectEmit(address(grid));
        emit IAudit.ValidatorRewarded(leaf, v3, each);
        vm.expectEmit(address(grid));
        emit IAudit.WorkerAuditRateSet(worker, BPS);
        vm.expectEmit(address(grid));
        emit IAudit.AuditFinalized(batchId, leaf, worker, IAudit.Verdict.Fail, WORKER_SLASH);
        vm.prank(makeAddr("anyone"));
        grid.finalize(leaf);

        assertEq(_workerStake(worker), WORKER_BOND - WORKER_SLASH);
        assertEq(grid.workerBond(worker).slashed, WORKER_SLASH);
        assertEq(grid.earningsOf(v1), each);
        assertEq(grid.earningsOf(v2), each);
        assertEq(grid.earningsOf(v3), each);
        assertEq(grid.protocolFees() - fees, WORKER_SLASH - 3 * each);
        assertEq(WORKER_SLASH - 3 * each, 50e18 + 2);
        assertEq(grid.validatorPool(), pool);
        assertEq(aipg.balanceOf(address(grid)), balance, "no token moved");
        assertEq(grid.workerAuditRate(worker), BPS);
        IAudit.AuditInfo memory a = grid.getAudit(leaf);
        assertEq(uint8(a.verdict), uint8(IAudit.Verdict.Fail));
        assertEq(a.slashed, WORKER_SLASH);
        assertEq(_validatorStake(v1) + _validatorStake(v2) + _validatorStake(v3), 3 * VALIDATOR_MIN);
    }

    function test_finalize_failMajority_slashesThePassVoter() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _attest(v3, batchId, rs, 0, IAudit.Vote.Pass);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Fail);
        _closeWindow(batchId);
        uint256 pool = grid.validatorPool();
        uint256 fees = grid.protocolFees();

        vm.expectEmit(address(grid));
        emit IAudit.ValidatorRewarded(leaf, v1, 25e18);
        vm.expectEmit(address(grid));
        emit IBonding.BondSlashed(IBonding.Role.Validator, v3, FALSE_ATTESTATION_SLASH);
        vm.expectEmit(address(grid));
        emit IAudit.FalseAttestationSlashed(leaf, v3, FALSE_ATTESTATION_SLASH);
        vm.expectEmit(address(grid));
        emit IAudit.ValidatorRewarded(leaf, v2, 25e18);
        grid.finalize(leaf);

        assertEq(grid.earningsOf(v1), 25e18);
        assertEq(grid.earningsOf(v2), 25e18);
        assertEq(grid.earningsOf(v3), 0);
        assertEq(_validatorStake(v1), VALIDATOR_MIN, "winner keeps its stake");
        assertEq(_validatorStake(v2), VALIDATOR_MIN, "winner keeps its stake");
        assertEq(_validatorStake(v3), VALIDATOR_MIN - FALSE_ATTESTATION_SLASH);
        assertFalse(grid.isActiveValidator(v3), "below the minimum now");
        assertEq(grid.validatorPool() - pool, FALSE_ATTESTATION_SLASH);
        assertEq(grid.protocolFees() - fees, 50e18);
    }

    function test_finalize_unanimousPass_paysFromThePool() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Pass);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Pass);
        _attest(v3, batchId, rs, 0, IAudit.Vote.Pass);
        _closeWindow(batchId);
        uint256 pool = grid.validatorPool();
        uint256 stake = _workerStake(worker);

        vm.expectEmit(address(grid));
        emit IAudit.ValidatorRewarded(leaf, v1, PASS_REWARD);
        vm.expectEmit(address(grid));
        emit IAudit.ValidatorRewarded(leaf, v2, PASS_REWARD);
        vm.expectEmit(address(grid));
        emit IAudit.ValidatorRewarded(leaf, v3, PASS_REWARD);
        vm.expectEmit(address(grid));
        emit IAudit.AuditFinalized(batchId, leaf, worker, IAudit.Verdict.Pass, 0);
        grid.finalize(leaf);

        assertEq(pool - grid.validatorPool(), 3 * PASS_REWARD);
        assertEq(grid.earningsOf(v1), PASS_REWARD);
        assertEq(grid.earningsOf(v2), PASS_REWARD);
        assertEq(grid.earningsOf(v3), PASS_REWARD);
        assertEq(_workerStake(worker), stake);
        assertEq(grid.workerAuditRate(worker), 0);
    }

    function test_finalize_passMajority_slashesTheFailVoterIntoThePool() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Pass);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Fail);
        _attest(v3, batchId, rs, 0, IAudit.Vote.Pass);
        _closeWindow(batchId);
        uint256 pool = grid.validatorPool();

        vm.expectEmit(address(grid));
        emit IAudit.FalseAttestationSlashed(leaf, v2, FALSE_ATTESTATION_SLASH);
        vm.expectEmit(address(grid));
        emit IAudit.ValidatorRewarded(leaf, v1, PASS_REWARD);
        vm.expectEmit(address(grid));
        emit IAudit.ValidatorRewarded(leaf, v3, PASS_REWARD);
        grid.finalize(leaf);

        assertEq(_validatorStake(v2), VALIDATOR_MIN - FALSE_ATTESTATION_SLASH);
        assertEq(_validatorStake(v1), VALIDATOR_MIN);
        assertEq(_validatorStake(v3), VALIDATOR_MIN);
        assertEq(grid.validatorPool(), pool + FALSE_ATTESTATION_SLASH - 2 * PASS_REWARD);
        assertEq(grid.earningsOf(v2), 0);
    }

    function test_finalize_passReward_limitedByThePool() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.passReward = 10e18; // the pool holds 15 AIPG + this batch's 0.15
        _setConfig(c);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Pass);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Pass);
        _attest(v3, batchId, rs, 0, IAudit.Vote.Pass);
        _closeWindow(batchId);
        uint256 pool = grid.validatorPool();
        vm.expectEmit(address(grid));
        emit IAudit.ValidatorRewarded(_leaf(rs[0]), v1, 10e18);
        vm.expectEmit(address(grid));
        emit IAudit.ValidatorRewarded(_leaf(rs[0]), v2, pool - 10e18);
        vm.expectEmit(address(grid));
        emit IAudit.ValidatorRewarded(_leaf(rs[0]), v3, 0);
        grid.finalize(_leaf(rs[0]));
        assertEq(grid.validatorPool(), 0);
        assertEq(grid.earningsOf(v1) + grid.earningsOf(v2) + grid.earningsOf(v3), pool);
    }

    function test_finalize_tie_isInconclusive() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Pass);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Fail);
        _assertInconclusive(batchId, rs);
    }

    function test_finalize_belowQuorum_isInconclusive() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Fail);
        _assertInconclusive(batchId, rs);
    }

    function _assertInconclusive(uint256 batchId, IAudit.Receipt[] memory rs) internal {
        _closeWindow(batchId);
        uint256 pool = grid.validatorPool();
        uint256 fees = grid.protocolFees();
        uint256 stakes = grid.totalValidatorBonded() + grid.totalWorkerBonded();
        vm.recordLogs();
        grid.finalize(_leaf(rs[0]));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1, "only AuditFinalized");
        assertEq(logs[0].topics[0], IAudit.AuditFinalized.selector);
        assertEq(uint8(grid.getAudit(_leaf(rs[0])).verdict), uint8(IAudit.Verdict.Inconclusive));
        assertEq(grid.validatorPool(), pool);
        assertEq(grid.protocolFees(), fees);
        assertEq(grid.totalValidatorBonded() + grid.totalWorkerBonded(), stakes);
        assertEq(grid.earningsOf(v1) + grid.earningsOf(v2) + grid.earningsOf(v3), 0);
        vm.expectRevert(abi.encodeWithSelector(IAudit.AlreadyFinalized.selector, _leaf(rs[0])));
        grid.finalize(_leaf(rs[0]));
    }

    function test_finalize_silentValidator_earnsAndLosesNothing() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Fail);
        _closeWindow(batchId);
        vm.recordLogs();
        grid.finalize(_leaf(rs[0]));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            for (uint256 t = 1; t < logs[i].topics.length; ++t) {
                assertTrue(logs[i].topics[t] != bytes32(uint256(uint160(v3))), "silent validator in an event");
            }
        }
        assertEq(grid.earningsOf(v3), 0);
        assertEq(_validatorStake(v3), VALIDATOR_MIN);
        assertEq(grid.earningsOf(v1), 25e18);
    }

    function test_finalize_workerSlash_cappedAtItsBond() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.workerSlashAmount = 10 * WORKER_BOND;
        _setConfig(c);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Fail);
        _closeWindow(batchId);
        vm.expectEmit(address(grid));
        emit IAudit.AuditFinalized(batchId, _leaf(rs[0]), worker, IAudit.Verdict.Fail, WORKER_BOND);
        grid.finalize(_leaf(rs[0]));
        assertEq(_workerStake(worker), 0);
        assertFalse(grid.isActiveWorker(worker));
        assertEq(grid.earningsOf(v1), WORKER_BOND / 4);
        assertEq(grid.getAudit(_leaf(rs[0])).slashed, WORKER_BOND);
    }

    function test_finalize_slashesAnUnbondingWorker() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Fail);
        vm.prank(worker);
        grid.requestWorkerUnbond(WORKER_BOND); // trying to run
        _closeWindow(batchId);
        grid.finalize(_leaf(rs[0]));
        assertEq(grid.workerBond(worker).unbonding, WORKER_BOND - WORKER_SLASH);
    }

    function test_finalize_falseAttestationSlash_cappedAtTheValidatorsBond() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.falseAttestationSlash = 3 * VALIDATOR_MIN;
        _setConfig(c);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Pass);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Pass);
        _attest(v3, batchId, rs, 0, IAudit.Vote.Fail);
        _closeWindow(batchId);
        uint256 pool = grid.validatorPool();
        vm.expectEmit(address(grid));
        emit IAudit.FalseAttestationSlashed(_leaf(rs[0]), v3, VALIDATOR_MIN);
        grid.finalize(_leaf(rs[0]));
        assertEq(_validatorStake(v3), 0);
        assertEq(grid.validatorBond(v3).operator, address(0), "operator key freed");
        assertEq(grid.validatorPool(), pool + VALIDATOR_MIN - 2 * PASS_REWARD);
    }

    function test_finalize_finderShareZero_allToTreasury() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.finderShareBps = 0;
        _setConfig(c);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Fail);
        _closeWindow(batchId);
        uint256 fees = grid.protocolFees();
        grid.finalize(_leaf(rs[0]));
        assertEq(grid.protocolFees() - fees, WORKER_SLASH);
        assertEq(grid.earningsOf(v1), 0);
    }

    function test_finalize_usesTheConfigFrozenAtFixing() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.workerSlashAmount = 1;
        c.quorum = 3;
        c.finderShareBps = 0;
        _setConfig(c);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Fail);
        _closeWindow(batchId);
        grid.finalize(_leaf(rs[0]));
        assertEq(
            uint8(grid.getAudit(_leaf(rs[0])).verdict), uint8(IAudit.Verdict.Fail), "quorum 2 of its config"
        );
        assertEq(grid.getAudit(_leaf(rs[0])).slashed, WORKER_SLASH);
        assertEq(grid.earningsOf(v1), 25e18);
    }

    function test_finalize_failOnAFullyAuditedWorker_doesNotResetItsRate() public {
        vm.prank(owner);
        grid.setWorkerAuditRate(worker, BPS);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Fail);
        _closeWindow(batchId);
        vm.recordLogs();
        grid.finalize(_leaf(rs[0]));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            assertTrue(logs[i].topics[0] != IAudit.WorkerAuditRateSet.selector);
        }
        assertEq(grid.workerAuditRate(worker), BPS);
    }

    /// @dev The FAIL verdict raises the worker's rate for the batches fixed afterwards, whatever the default.
    function test_finalize_fail_auditsTheWorkerFullyFromThenOn() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Fail);
        _closeWindow(batchId);
        grid.finalize(_leaf(rs[0]));
        assertEq(grid.workerAuditRate(worker), BPS);

        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.auditRateBps = 0;
        _setConfig(c);
        address other = makeAddr("other worker");
        _bondWorker(other, WORKER_MIN);
        IAudit.Receipt[] memory next = new IAudit.Receipt[](8);
        for (uint256 i; i < 8; ++i) {
            next[i] = _receipt(i % 2 == 0 ? worker : other);
        }
        uint256 b = _settle(next);
        _fix(b);
        for (uint256 i; i < 8; ++i) {
            assertEq(grid.isAudited(b, _leaf(next[i]), next[i].worker), i % 2 == 0);
        }
    }

    function test_finalize_makesNoExternalCalls() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Fail);
        _attest(v3, batchId, rs, 0, IAudit.Vote.Pass);
        _closeWindow(batchId);
        address[] memory outside = _callsOutOfTheDiamond(abi.encodeCall(IAudit.finalize, (_leaf(rs[0]))));
        assertEq(outside.length, 0, "finalize called out of the diamond");
        assertEq(uint8(grid.getAudit(_leaf(rs[0])).verdict), uint8(IAudit.Verdict.Fail));
    }

    /// @dev The same probe sees fixRandomness's one call out: the STATICCALL to the randomness source.
    function test_fixRandomness_onlyCallOutIsTheSource() public {
        uint256 batchId = _settle(_receipts(worker, 1));
        vm.roll(block.number + RANDOMNESS_DELAY + 1);
        address[] memory outside = _callsOutOfTheDiamond(abi.encodeCall(IAudit.fixRandomness, (batchId)));
        assertEq(outside.length, 1);
        assertEq(outside[0], address(randomness));
    }

    /// @dev Runs `data` on the diamond and returns every account it called other than the diamond itself and
    /// the audit facet it delegates to.
    function _callsOutOfTheDiamond(bytes memory data) internal returns (address[] memory outside) {
        vm.startStateDiffRecording();
        (bool ok,) = address(grid).call(data);
        VmSafe.AccountAccess[] memory accesses = vm.stopAndReturnStateDiff();
        assertTrue(ok);
        outside = new address[](accesses.length);
        uint256 n;
        for (uint256 i; i < accesses.length; ++i) {
            VmSafe.AccountAccessKind kind = accesses[i].kind;
            if (
                kind != VmSafe.AccountAccessKind.Call && kind != VmSafe.AccountAccessKind.DelegateCall
                    && kind != VmSafe.AccountAccessKind.StaticCall
                    && kind != VmSafe.AccountAccessKind.CallCode && kind != VmSafe.AccountAccessKind.Create
            ) continue;
            address account = accesses[i].account;
            bool entry = account == address(grid) && kind == VmSafe.AccountAccessKind.Call;
            // (a delegatecall is recorded with its caller's context as the accessor)
            bool facet = account == address(auditFacet) && kind == VmSafe.AccountAccessKind.DelegateCall;
            if (!entry && !facet) outside[n++] = account;
        }
        assembly ("memory-safe") {
            mstore(outside, n)
        }
    }

    function test_finalize_keepsTheBalanceInvariant() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _attest(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _attest(v2, batchId, rs, 0, IAudit.Vote.Pass);
        _attest(v3, batchId, rs, 0, IAudit.Vote.Fail);
        _closeWindow(batchId);
        address[] memory accounts = _accounts();
        assertEq(_liabilities(accounts), aipg.balanceOf(address(grid)));
        grid.finalize(_leaf(rs[0]));
        assertEq(_liabilities(accounts), aipg.balanceOf(address(grid)));
    }

    // ================================================================ verdict arithmetic (fuzz)

    struct Snapshot {
        uint256[] stake;
        uint256[] earned;
        uint256 workerStake;
        uint256 pool;
        uint256 fees;
        uint256 balance;
    }

    struct VerdictInput {
        uint256 seed;
        uint256 nPass;
        uint256 nFail;
        uint256 quorum;
        uint256 workerSlash;
        uint16 finderBps;
        uint256 falseSlash;
        uint256 passReward;
    }

    struct VerdictCase {
        address[] vs;
        uint256 nPass;
        uint256 nFail;
        IAudit.AuditConfig c;
        bytes32 leaf;
    }

    function testFuzz_finalize_verdictArithmetic(VerdictInput memory input) public {
        VerdictCase memory k = _verdictCase(input);
        Snapshot memory s = _snapshot(k.vs);
        uint256 liabilities = _liabilities(_accounts(k.vs));
        assertEq(liabilities, s.balance);
        grid.finalize(k.leaf);

        IAudit.Verdict verdict = k.nPass + k.nFail < k.c.quorum || k.nPass == k.nFail
            ? IAudit.Verdict.Inconclusive
            : (k.nFail > k.nPass ? IAudit.Verdict.Fail : IAudit.Verdict.Pass);
        assertEq(uint8(grid.getAudit(k.leaf).verdict), uint8(verdict));
        (uint256 workerSlashed, uint256 toPool, uint256 fromPool) = verdict == IAudit.Verdict.Fail
            ? _checkFail(k, s)
            : verdict == IAudit.Verdict.Pass ? _checkPass(k, s) : _checkInconclusive(k, s);
        for (uint256 i = k.nPass + k.nFail; i < k.vs.length; ++i) {
            assertEq(_validatorStake(k.vs[i]), s.stake[i], "silent");
            assertEq(grid.earningsOf(k.vs[i]), s.earned[i], "silent");
        }
        assertEq(s.workerStake - _workerStake(worker), workerSlashed);
        assertEq(grid.getAudit(k.leaf).slashed, workerSlashed);
        assertEq(grid.validatorPool(), s.pool + toPool - fromPool);
        assertEq(aipg.balanceOf(address(grid)), s.balance, "no token moved");
        assertEq(_liabilities(_accounts(k.vs)), liabilities, "nothing created or lost");
    }

    /// @dev Eight validators, k = 8 (all assigned), the first nPass vote PASS, the next nFail vote FAIL.
    function _verdictCase(VerdictInput memory input) internal returns (VerdictCase memory k) {
        k.vs = _eightValidators(input.seed);
        k.nPass = bound(input.nPass, 0, 8);
        k.nFail = bound(input.nFail, k.nPass == 0 ? 1 : 0, 8 - k.nPass);
        k.c = _defaultAuditConfig();
        k.c.validatorsPerAudit = 8;
        k.c.quorum = uint8(bound(input.quorum, 1, 8));
        k.c.workerSlashAmount = bound(input.workerSlash, 0, 2 * WORKER_BOND);
        k.c.finderShareBps = uint16(bound(input.finderBps, 0, BPS));
        k.c.falseAttestationSlash = bound(input.falseSlash, 0, 3 * VALIDATOR_MIN);
        k.c.passReward = bound(input.passReward, 0, 5e18);
        _setConfig(k.c);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        for (uint256 i; i < k.nPass + k.nFail; ++i) {
            _attest(k.vs[i], batchId, rs, 0, i < k.nPass ? IAudit.Vote.Pass : IAudit.Vote.Fail);
        }
        k.leaf = _leaf(rs[0]);
        _closeWindow(batchId);
    }

    function _falseSlash(VerdictCase memory k, Snapshot memory s, uint256 i)
        internal
        view
        returns (uint256 taken)
    {
        taken = k.c.falseAttestationSlash < s.stake[i] ? k.c.falseAttestationSlash : s.stake[i];
        assertEq(s.stake[i] - _validatorStake(k.vs[i]), taken, "false attestation");
        assertEq(grid.earningsOf(k.vs[i]), s.earned[i], "nothing for the losing side");
    }

    function _checkFail(VerdictCase memory k, Snapshot memory s)
        internal
        view
        returns (uint256 workerSlashed, uint256 toPool, uint256 fromPool)
    {
        workerSlashed = k.c.workerSlashAmount < s.workerStake ? k.c.workerSlashAmount : s.workerStake;
        uint256 each = workerSlashed * k.c.finderShareBps / BPS / k.nFail;
        for (uint256 i; i < k.nPass; ++i) {
            toPool += _falseSlash(k, s, i);
        }
        for (uint256 i = k.nPass; i < k.nPass + k.nFail; ++i) {
            assertEq(grid.earningsOf(k.vs[i]) - s.earned[i], each, "finder share");
            assertEq(_validatorStake(k.vs[i]), s.stake[i], "winner keeps its stake");
        }
        assertEq(grid.protocolFees() - s.fees, workerSlashed - each * k.nFail, "treasury gets the rest");
        fromPool = 0;
    }

    function _checkPass(VerdictCase memory k, Snapshot memory s)
        internal
        view
        returns (uint256 workerSlashed, uint256 toPool, uint256 fromPool)
    {
        for (uint256 i = k.nPass; i < k.nPass + k.nFail; ++i) {
            toPool += _falseSlash(k, s, i);
        }
        uint256 pool = s.pool + toPool;
        for (uint256 i; i < k.nPass; ++i) {
            uint256 paid = k.c.passReward < pool ? k.c.passReward : pool;
            pool -= paid;
            fromPool += paid;
            assertEq(grid.earningsOf(k.vs[i]) - s.earned[i], paid, "pass reward");
            assertEq(_validatorStake(k.vs[i]), s.stake[i], "winner keeps its stake");
        }
        assertEq(grid.protocolFees(), s.fees);
        workerSlashed = 0;
    }

    function _checkInconclusive(VerdictCase memory k, Snapshot memory s)
        internal
        view
        returns (uint256 workerSlashed, uint256 toPool, uint256 fromPool)
    {
        for (uint256 i; i < k.nPass + k.nFail; ++i) {
            assertEq(_validatorStake(k.vs[i]), s.stake[i]);
            assertEq(grid.earningsOf(k.vs[i]), s.earned[i]);
        }
        assertEq(grid.protocolFees(), s.fees);
        return (0, 0, 0);
    }

    // ================================================================ governance

    function test_setAuditConfig_updatesAndEmits() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.auditRateBps = 200;
        c.validatorsPerAudit = 5;
        c.quorum = 3;
        c.attestWindow = 1 days;
        c.passReward = 2e18;
        vm.expectEmit(address(grid));
        emit IAudit.AuditConfigUpdated(c);
        _setConfig(c);
        IAudit.AuditConfig memory got = grid.auditConfig();
        assertEq(got.auditRateBps, 200);
        assertEq(got.validatorsPerAudit, 5);
        assertEq(got.quorum, 3);
        assertEq(got.attestWindow, 1 days);
        assertEq(got.passReward, 2e18);
        (uint256 batchId,) = _fixedBatch(1);
        assertEq(grid.batchAudit(batchId).deadline, block.timestamp + 1 days);
    }

    function test_setAuditConfig_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, address(this)));
        grid.setAuditConfig(_defaultAuditConfig());
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.auditRateBps = 10_001;
        _expectConfigRevert(c, "auditRateBps");
        c = _defaultAuditConfig();
        c.validatorsPerAudit = 0;
        c.quorum = 0;
        _expectConfigRevert(c, "validatorsPerAudit");
        c = _defaultAuditConfig();
        c.quorum = 0;
        _expectConfigRevert(c, "quorum");
        c = _defaultAuditConfig();
        c.quorum = 4;
        _expectConfigRevert(c, "quorum");
        c = _defaultAuditConfig();
        c.attestWindow = 0;
        _expectConfigRevert(c, "attestWindow");
        c = _defaultAuditConfig();
        c.finderShareBps = 10_001;
        _expectConfigRevert(c, "finderShareBps");
    }

    function _expectConfigRevert(IAudit.AuditConfig memory c, string memory reason) internal {
        vm.expectRevert(abi.encodeWithSelector(IAudit.InvalidAuditConfig.selector, reason));
        vm.prank(owner);
        grid.setAuditConfig(c);
    }

    function test_setRandomnessSource() public {
        FixedRandomness fixedSource = new FixedRandomness(keccak256("fixed"));
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, address(this)));
        grid.setRandomnessSource(address(fixedSource));
        vm.startPrank(owner);
        vm.expectRevert(abi.encodeWithSelector(IAudit.InvalidAuditConfig.selector, "randomnessSource"));
        grid.setRandomnessSource(address(0));
        vm.expectRevert(abi.encodeWithSelector(IAudit.InvalidAuditConfig.selector, "randomnessSource"));
        grid.setRandomnessSource(makeAddr("eoa"));
        vm.expectEmit(address(grid));
        emit IAudit.RandomnessSourceSet(address(fixedSource));
        grid.setRandomnessSource(address(fixedSource));
        vm.stopPrank();
        assertEq(grid.randomnessSource(), address(fixedSource));
        uint256 batchId = _settle(_receipts(worker, 1));
        grid.fixRandomness(batchId); // ready at once: no delay for this source
        assertEq(grid.batchAudit(batchId).randomness, keccak256("fixed"));
    }

    // ================================================================ helpers

    function _has(address[] memory list, address who) internal pure returns (bool) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == who) return true;
        }
        return false;
    }

    function _missing(address[] memory list, address[4] memory all) internal pure returns (address) {
        for (uint256 i; i < 4; ++i) {
            if (!_has(list, all[i])) return all[i];
        }
        revert("none missing");
    }

    /// @dev Independent re-implementation of LibAudit.draw's documented algorithm.
    function _referenceDraw(bytes32 r, bytes32 leaf, uint256 k) internal view returns (address[] memory out) {
        address[] memory active = grid.activeValidators();
        uint256 n = active.length;
        uint256[] memory w = new uint256[](n);
        uint256 total;
        for (uint256 i; i < n; ++i) {
            w[i] = grid.validatorBond(active[i]).amount;
            total += w[i];
        }
        if (k > n) k = n;
        out = new address[](k);
        for (uint256 d; d < k; ++d) {
            uint256 x = uint256(keccak256(abi.encode(r, leaf, d))) % total;
            uint256 acc;
            for (uint256 i; i < n; ++i) {
                acc += w[i];
                if (x < acc) {
                    out[d] = active[i];
                    total -= w[i];
                    w[i] = 0;
                    break;
                }
            }
        }
    }

    function _eightValidators(uint256 seed) internal returns (address[] memory vs) {
        vs = new address[](8);
        vs[0] = v1;
        vs[1] = v2;
        vs[2] = v3;
        for (uint256 i = 3; i < 8; ++i) {
            vs[i] = makeAddr(string.concat("validator", vm.toString(i + 1)));
            _bondValidator(
                vs[i], VALIDATOR_MIN + bound(uint256(keccak256(abi.encode(seed, i))), 0, VALIDATOR_MIN)
            );
        }
    }

    function _snapshot(address[] memory vs) internal view returns (Snapshot memory s) {
        s.stake = new uint256[](vs.length);
        s.earned = new uint256[](vs.length);
        for (uint256 i; i < vs.length; ++i) {
            s.stake[i] = _validatorStake(vs[i]);
            s.earned[i] = grid.earningsOf(vs[i]);
        }
        s.workerStake = _workerStake(worker);
        s.pool = grid.validatorPool();
        s.fees = grid.protocolFees();
        s.balance = aipg.balanceOf(address(grid));
    }

    function _accounts() internal view returns (address[] memory a) {
        address[] memory vs = new address[](3);
        vs[0] = v1;
        vs[1] = v2;
        vs[2] = v3;
        return _accounts(vs);
    }

    function _accounts(address[] memory vs) internal view returns (address[] memory a) {
        a = new address[](vs.length + 3);
        for (uint256 i; i < vs.length; ++i) {
            a[i] = vs[i];
        }
        a[vs.length] = worker;
        a[vs.length + 1] = payer;
        a[vs.length + 2] = gateway;
    }

    /// @dev Everything the diamond owes: Σ bonds + Σ deposits + Σ earnings + pools (for `accounts`, which must
    /// be everyone holding a deposit or earnings).
    function _liabilities(address[] memory accounts) internal view returns (uint256 sum) {
        sum = grid.totalWorkerBonded() + grid.totalValidatorBonded() + grid.validatorPool()
            + grid.protocolFees();
        for (uint256 i; i < accounts.length; ++i) {
            sum += grid.depositOf(accounts[i]).balance + grid.earningsOf(accounts[i]);
        }
    }
}
