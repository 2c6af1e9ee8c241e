// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm, VmSafe} from "forge-std/Vm.sol";
import {AuditFixture} from "../utils/AuditFixture.sol";
import {ReceiptTree} from "../utils/ReceiptTree.sol";
import {IAudit, IRandomnessSource} from "../../src/interfaces/IAudit.sol";
import {IBonding} from "../../src/interfaces/IBonding.sol";
import {ICommon} from "../../src/interfaces/ICommon.sol";
import {ICutTimelock} from "../../src/interfaces/ICutTimelock.sol";
import {IDiamond} from "../../src/interfaces/IDiamond.sol";
import {IERC173} from "../../src/interfaces/IERC173.sol";
import {IGrid} from "../../src/interfaces/IGrid.sol";
import {IGridInit} from "../../src/interfaces/IGridInit.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {LibAudit} from "../../src/libraries/LibAudit.sol";

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

/// @notice AuditFacet and LibAudit: every function, every revert, every event, the verdict arithmetic of
/// commit-reveal audits, operator-key history, frozen seats and announced rule changes.
contract AuditFacetTest is AuditFixture {
    uint16 internal constant BPS = 10_000;
    // secp256k1's group order, for the high-s twin of a signature
    uint256 internal constant SECP256K1_N =
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    function setUp() public override {
        super.setUp();
        // A first batch (fake root, never audited) fills the validator pool: 15% of 100 AIPG. It holds the
        // gateway's receipt number 0, so the fixture's receipts start at 1.
        IPayments.PayerDebit[] memory debits = new IPayments.PayerDebit[](1);
        debits[0] = IPayments.PayerDebit({payer: payer, amount: 100e18});
        IPayments.WorkerCredit[] memory credits = new IPayments.WorkerCredit[](1);
        credits[0] = IPayments.WorkerCredit({worker: worker, gross: 100e18});
        uint64 seq = nextSeq[gateway]++;
        vm.prank(gateway);
        grid.settle(keccak256("warm"), seq, 1, debits, credits);
        assertEq(grid.validatorPool(), 15e18);
    }

    // ================================================================ deployment

    function test_init_storesAuditConfigLimitsAndSource() public view {
        IAudit.AuditConfig memory c = grid.auditConfig();
        assertEq(c.auditRateBps, AUDIT_RATE_BPS);
        assertEq(c.validatorsPerAudit, VALIDATORS_PER_AUDIT);
        assertEq(c.quorum, QUORUM);
        assertEq(c.commitWindow, COMMIT_WINDOW);
        assertEq(c.revealWindow, REVEAL_WINDOW);
        assertEq(c.randomnessDelay, RANDOMNESS_DELAY);
        assertEq(c.workerSlashAmount, WORKER_SLASH);
        assertEq(c.falseAttestationSlash, FALSE_ATTESTATION_SLASH);
        assertEq(c.finderShareBps, FINDER_SHARE_BPS);
        assertEq(c.passReward, PASS_REWARD);
        IAudit.AuditLimits memory lim = grid.auditLimits();
        assertEq(lim.maxWorkerSlashBps, MAX_WORKER_SLASH_BPS);
        assertEq(lim.maxFalseAttestationSlashBps, MAX_FALSE_SLASH_BPS);
        assertEq(lim.maxFinderShareBps, MAX_FINDER_SHARE_BPS);
        assertEq(lim.minValidatorsPerAudit, MIN_VALIDATORS_PER_AUDIT);
        assertEq(lim.minQuorum, MIN_QUORUM);
        assertEq(lim.minCommitWindow, MIN_COMMIT_WINDOW);
        assertEq(lim.minRevealWindow, MIN_REVEAL_WINDOW);
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

    function test_init_revertsWhenRandomnessSourceHasNoCode() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.randomnessSource = address(0);
        _expectInitRevert(a, "randomnessSource");
        a.randomnessSource = makeAddr("eoa");
        _expectInitRevert(a, "randomnessSource");
    }

    /// @dev Every limit reached exactly is still a valid config.
    function test_init_acceptsBoundaryConfig() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.audit.auditRateBps = 10_000;
        a.audit.validatorsPerAudit = MIN_VALIDATORS_PER_AUDIT;
        a.audit.quorum = MIN_QUORUM;
        a.audit.commitWindow = MIN_COMMIT_WINDOW;
        a.audit.revealWindow = MIN_REVEAL_WINDOW;
        a.audit.finderShareBps = MAX_FINDER_SHARE_BPS;
        a.audit.workerSlashAmount = WORKER_MIN * MAX_WORKER_SLASH_BPS / BPS;
        a.audit.falseAttestationSlash = VALIDATOR_MIN * MAX_FALSE_SLASH_BPS / BPS;
        a.audit.randomnessDelay = 0;
        IGrid g = _deployGrid(a);
        assertEq(g.auditConfig().quorum, MIN_QUORUM);
        assertEq(g.auditConfig().workerSlashAmount, 200e18);
        assertEq(g.auditConfig().falseAttestationSlash, 1_000e18);
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
        _commit(v1, a, ra, 0, IAudit.Vote.Fail);
        _commit(v2, a, ra, 0, IAudit.Vote.Fail);
        _commit(v3, a, ra, 1, IAudit.Vote.Fail); // stays open forever once the facet is gone
        _toReveal(a);
        _reveal(v1, ra[0], IAudit.Vote.Fail);
        _reveal(v2, ra[0], IAudit.Vote.Fail);
        _closeWindow(a);
        grid.finalize(_leaf(ra[0]));
        uint256 reward = grid.earningsOf(v1);
        assertEq(reward, 25e18);

        _executeCut(_singleCut(address(0), IDiamond.FacetCutAction.Remove, _auditSelectors()), address(0), "");
        vm.expectRevert(abi.encodeWithSelector(IGrid.FunctionNotFound.selector, IAudit.finalize.selector));
        grid.finalize(_leaf(ra[1]));

        uint256 workerLeft = _workerStake(worker);
        vm.prank(worker);
        grid.requestWorkerUnbond(workerLeft);
        vm.prank(v3);
        grid.requestValidatorUnbond(VALIDATOR_MIN);
        vm.prank(v1);
        grid.requestValidatorUnbond(VALIDATOR_MIN);
        vm.warp(block.timestamp + UNBOND_DELAY);
        uint256 before = aipg.balanceOf(worker);
        vm.prank(worker);
        grid.withdrawWorkerBond();
        assertEq(aipg.balanceOf(worker) - before, workerLeft);
        before = aipg.balanceOf(v3);
        vm.prank(v3);
        grid.withdrawValidatorBond();
        assertEq(aipg.balanceOf(v3) - before, VALIDATOR_MIN, "the open audit's voter leaves whole");
        before = aipg.balanceOf(v1);
        vm.startPrank(v1);
        grid.withdrawValidatorBond();
        grid.withdrawEarnings();
        vm.stopPrank();
        assertEq(aipg.balanceOf(v1) - before, VALIDATOR_MIN + reward);
    }

    // ================================================================ receiptLeaf, receiptDigest

    function test_receiptLeaf_isTheStandardTreeLeaf() public {
        IAudit.Receipt memory r = _receipt(worker);
        bytes32 expected = keccak256(
            bytes.concat(
                keccak256(
                    bytes.concat(
                        abi.encode(r.jobId, r.gateway, r.payer, r.worker, r.modelId, r.requestHash, r.outputHash),
                        abi.encode(r.inputUnits, r.outputUnits, r.fee, r.completedAt, r.confidential, r.seq)
                    )
                )
            )
        );
        assertEq(grid.receiptLeaf(r), expected);
        assertEq(ReceiptTree.leaf(r), expected);
        r.seq += 1;
        assertTrue(grid.receiptLeaf(r) != expected, "seq is part of the leaf");
    }

    function test_receiptDigest_isEip712UnderTheDiamondsDomain() public {
        IAudit.Receipt memory r = _receipt(worker);
        bytes32 typeHash = keccak256(
            "Receipt(bytes32 jobId,address gateway,address payer,address worker,bytes32 modelId,"
            "bytes32 requestHash,bytes32 outputHash,uint64 inputUnits,uint64 outputUnits,uint256 fee,"
            "uint64 completedAt,bool confidential,uint64 seq)"
        );
        bytes32 structHash = keccak256(
            bytes.concat(
                abi.encode(typeHash, r.jobId, r.gateway, r.payer, r.worker, r.modelId, r.requestHash),
                abi.encode(r.outputHash, r.inputUnits, r.outputUnits, r.fee, r.completedAt, r.confidential, r.seq)
            )
        );
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("AIPG Grid"),
                keccak256("1"),
                block.chainid,
                address(grid)
            )
        );
        bytes32 digest = grid.receiptDigest(r);
        assertEq(digest, keccak256(abi.encodePacked(hex"1901", domain, structHash)));
        vm.chainId(block.chainid + 1);
        assertTrue(grid.receiptDigest(r) != digest, "chain id is part of the domain");
    }

    // ================================================================ fixRandomness

    function test_fixRandomness_storesRandomnessAndDeadlines() public {
        uint256 batchId = _settle(_receipts(worker, 2));
        uint64 settledBlock = grid.getBatch(batchId).settledBlock;
        vm.roll(settledBlock + RANDOMNESS_DELAY + 1);
        bytes32 expected = keccak256(abi.encode(blockhash(settledBlock + RANDOMNESS_DELAY), batchId));
        assertTrue(expected != bytes32(0));
        uint64 deadline = uint64(block.timestamp) + COMMIT_WINDOW;

        vm.expectEmit(address(grid));
        emit IAudit.AuditRandomnessFixed(batchId, expected, deadline);
        vm.prank(makeAddr("anyone"));
        grid.fixRandomness(batchId);

        IAudit.BatchAudit memory b = grid.batchAudit(batchId);
        assertEq(b.randomness, expected);
        assertEq(b.fixedAt, block.timestamp);
        assertEq(b.deadline, deadline);
        assertEq(b.revealDeadline, deadline + REVEAL_WINDOW);
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
        _setSource(address(new FixedRandomness(bytes32(0))));
        uint256 batchId = _settle(_receipts(worker, 1));
        vm.expectRevert(abi.encodeWithSelector(IAudit.RandomnessNotReady.selector, batchId));
        grid.fixRandomness(batchId);
    }

    function test_fixRandomness_staticCallsTheSource() public {
        StatefulRandomness stateful = new StatefulRandomness();
        _setSource(address(stateful));
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
        _expectCommitRevert(
            abi.encodeWithSelector(IAudit.NotAudited.selector, _leaf(rs[0])), v1, batchId, rs, 0, IAudit.Vote.Fail
        );
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
        _expectCommitRevert(
            abi.encodeWithSelector(IAudit.NotAudited.selector, _leaf(ra[0])), v1, a, ra, 0, IAudit.Vote.Pass
        );
        _commit(v1, b, rb, 0, IAudit.Vote.Pass);
        assertEq(grid.getAudit(_leaf(rb[0])).commits, 1);
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

    // ================================================================ seats

    function test_assigned_emptyUntilFixed() public {
        IAudit.Receipt[] memory rs = _receipts(worker, 1);
        uint256 batchId = _settle(rs);
        assertEq(grid.assignedValidators(batchId, _leaf(rs[0])).length, 0);
        _fix(batchId);
        assertEq(grid.assignedValidators(batchId, _leaf(rs[0])).length, 3);
    }

    function test_assigned_allWhenKCoversThem() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        address[] memory a = grid.assignedValidators(batchId, _leaf(rs[0]));
        assertEq(a.length, 3);
        assertTrue(_has(a, v1) && _has(a, v2) && _has(a, v3));
    }

    function test_assigned_fewerWithWeightThanK_assignsAll() public {
        vm.prank(v3);
        grid.requestValidatorUnbond(VALIDATOR_MIN); // no weight from this block on (still slashable)
        vm.roll(block.number + 1);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        address[] memory a = grid.assignedValidators(batchId, _leaf(rs[0]));
        assertEq(a.length, 2);
        assertTrue(_has(a, v1) && _has(a, v2));
        _expectCommitRevert(
            abi.encodeWithSelector(IAudit.NotAssigned.selector, v3, _leaf(rs[0])), v3, batchId, rs, 0, IAudit.Vote.Pass
        );
        _commit(v1, batchId, rs, 0, IAudit.Vote.Pass);
        assertEq(grid.getAudit(_leaf(rs[0])).seats, 2);
    }

    function test_assigned_noValidatorWithWeight_isEmpty() public {
        address[3] memory vs = [v1, v2, v3];
        for (uint256 i; i < 3; ++i) {
            vm.prank(vs[i]);
            grid.requestValidatorUnbond(VALIDATOR_MIN);
        }
        vm.roll(block.number + 1);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        assertEq(grid.assignedValidators(batchId, _leaf(rs[0])).length, 0);
        _expectCommitRevert(
            abi.encodeWithSelector(IAudit.NotAssigned.selector, v1, _leaf(rs[0])), v1, batchId, rs, 0, IAudit.Vote.Fail
        );
    }

    /// @dev The view is exactly the documented draw (weighted, without replacement, over the validators in
    /// order of first bond, with their stakes of the block before settlement).
    function test_assigned_isTheDocumentedDraw() public {
        _bondValidator(makeAddr("v4"), 3 * VALIDATOR_MIN);
        _bondValidator(makeAddr("v5"), 7 * VALIDATOR_MIN);
        _bondValidator(makeAddr("v6"), VALIDATOR_MIN + 1);
        vm.roll(block.number + 1);
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

    /// @dev Seats come from the stake checkpoints of the block before settlement: nobody who bonds in the
    /// settlement block or later is seated, and no bond, unbond or raise after it moves a seat, for the view
    /// and for the audit the first commit opens alike. At most k seats.
    function test_assigned_frozenAtTheBlockBeforeSettlement() public {
        address v4 = makeAddr("v4");
        _bondValidator(v4, VALIDATOR_MIN);
        vm.roll(block.number + 1);
        IAudit.Receipt[] memory rs = _receipts(worker, 1);
        uint256 batchId = _settle(rs);
        address late = makeAddr("late");
        _bondValidator(late, 100 * VALIDATOR_MIN); // in the settlement block itself
        _fix(batchId);
        bytes32 leaf = _leaf(rs[0]);
        address[] memory before = grid.assignedValidators(batchId, leaf);
        assertEq(before.length, VALIDATORS_PER_AUDIT);
        assertFalse(_has(before, late), "bonded in the settlement block");

        // after settlement: a whale bonds, a seated validator leaves, another raises its stake
        _bondValidator(makeAddr("whale"), 1_000 * VALIDATOR_MIN);
        vm.prank(before[0]);
        grid.requestValidatorUnbond(VALIDATOR_MIN);
        _fund(before[1], 50 * VALIDATOR_MIN);
        vm.prank(before[1]);
        grid.increaseValidatorBond(50 * VALIDATOR_MIN);
        vm.roll(block.number + 5);
        _assertSameList(grid.assignedValidators(batchId, leaf), before);

        address out = _missing(before, [v1, v2, v3, v4]);
        _expectCommitRevert(
            abi.encodeWithSelector(IAudit.NotAssigned.selector, out, leaf), out, batchId, rs, 0, IAudit.Vote.Pass
        );
        vm.expectEmit(address(grid));
        emit IAudit.AuditOpened(batchId, leaf, worker, before);
        _commit(before[0], batchId, rs, 0, IAudit.Vote.Pass); // unbonding, still seated
        _assertSameList(grid.assignedValidators(batchId, leaf), before);
        assertEq(grid.getAudit(leaf).seats, VALIDATORS_PER_AUDIT);

        // and once the audit is open, even a later unbond of everyone changes nothing
        vm.prank(before[2]);
        grid.requestValidatorUnbond(VALIDATOR_MIN);
        _assertSameList(grid.assignedValidators(batchId, leaf), before);
    }

    function testFuzz_assigned_distinctValidatorsAtMostK(uint256[6] memory stakes, uint8 k, uint256 salt)
        public
    {
        k = uint8(bound(k, MIN_VALIDATORS_PER_AUDIT, 12));
        address[] memory extra = new address[](6);
        for (uint256 i; i < 6; ++i) {
            extra[i] = makeAddr(string.concat("fuzz-validator-", vm.toString(i)));
            _bondValidator(extra[i], bound(stakes[i], VALIDATOR_MIN, 1_000 * VALIDATOR_MIN));
        }
        vm.roll(block.number + 1);
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.validatorsPerAudit = k;
        c.quorum = k / 2 + 1;
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

    /// @dev With k = 3 of 3 every seat is filled; the draw order is weighted: the first seat goes to each
    /// validator about in proportion to its stake (10% / 20% / 70%).
    function test_assigned_weightedByStake() public {
        _fund(v2, VALIDATOR_MIN);
        vm.prank(v2);
        grid.increaseValidatorBond(VALIDATOR_MIN); // 20,000
        _fund(v3, 6 * VALIDATOR_MIN);
        vm.prank(v3);
        grid.increaseValidatorBond(6 * VALIDATOR_MIN); // 70,000
        vm.roll(block.number + 1);
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

    // ================================================================ commitVote

    function test_commitVote_firstCommitOpensTheAudit() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(3);
        bytes32 leaf = _leaf(rs[1]);
        address[] memory seats = grid.assignedValidators(batchId, leaf);
        bytes32 commitment = _commitment(v1, leaf, IAudit.Vote.Fail);
        bytes memory signature = _signature(rs[1]);
        bytes32[] memory proof = _proof(rs, 1);
        vm.expectEmit(address(grid));
        emit IAudit.AuditOpened(batchId, leaf, worker, seats);
        vm.expectEmit(address(grid));
        emit IAudit.VoteCommitted(batchId, leaf, v1, commitment);
        vm.prank(v1);
        grid.commitVote(batchId, rs[1], signature, proof, commitment);

        IAudit.AuditInfo memory a = grid.getAudit(leaf);
        IAudit.BatchAudit memory b = grid.batchAudit(batchId);
        assertEq(a.batchId, batchId);
        assertEq(a.worker, worker);
        assertEq(a.modelId, MODEL);
        assertEq(a.deadline, b.deadline);
        assertEq(a.revealDeadline, b.revealDeadline);
        assertEq(a.seats, 3);
        assertEq(a.commits, 1);
        assertEq(a.passVotes, 0);
        assertEq(a.failVotes, 0, "a commitment is no vote yet");
        assertEq(uint8(a.verdict), uint8(IAudit.Verdict.None));
        assertEq(a.slashed, 0);
        (bool committed, IAudit.Vote vote) = grid.voteOf(leaf, v1);
        assertTrue(committed);
        assertEq(uint8(vote), uint8(IAudit.Vote.None));
        (committed,) = grid.voteOf(leaf, v2);
        assertFalse(committed);

        // later commits skip the opening checks and do not reopen
        vm.recordLogs();
        _commit(v2, batchId, rs, 1, IAudit.Vote.Pass);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1, "only VoteCommitted");
        assertEq(logs[0].topics[0], IAudit.VoteCommitted.selector);
        assertEq(grid.getAudit(leaf).commits, 2);
        assertEq(grid.getAudit(_leaf(rs[0])).batchId, 0, "other leaves untouched");
    }

    function test_commitVote_asOperatorKey_countsForTheOwner() public {
        address hot = makeAddr("v1-hot");
        vm.prank(v1);
        grid.setValidatorOperator(hot);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        vm.expectEmit(address(grid));
        emit IAudit.VoteCommitted(batchId, leaf, v1, _commitment(v1, leaf, IAudit.Vote.Pass));
        _commit(hot, batchId, rs, 0, IAudit.Vote.Pass);
        (bool committed,) = grid.voteOf(leaf, v1);
        assertTrue(committed);
        // the owner itself can still sign, but the bond has committed
        _expectCommitRevert(
            abi.encodeWithSelector(IAudit.AlreadyCommitted.selector, v1, leaf), v1, batchId, rs, 0, IAudit.Vote.Fail
        );
        _toReveal(batchId);
        vm.expectEmit(address(grid));
        emit IAudit.Attested(batchId, leaf, v1, IAudit.Vote.Pass, _evidence(v1));
        _reveal(hot, rs[0], IAudit.Vote.Pass);
        (, IAudit.Vote vote) = grid.voteOf(leaf, v1);
        assertEq(uint8(vote), uint8(IAudit.Vote.Pass));
    }

    function test_commitVote_revertsWhenUnknownBatch() public {
        IAudit.Receipt[] memory rs = _receipts(worker, 1);
        _expectCommitRevert(
            abi.encodeWithSelector(IAudit.UnknownBatch.selector, 42), v1, 42, rs, 0, IAudit.Vote.Fail
        );
    }

    function test_commitVote_revertsWhenRandomnessNotFixed() public {
        IAudit.Receipt[] memory rs = _receipts(worker, 1);
        uint256 batchId = _settle(rs);
        _expectCommitRevert(
            abi.encodeWithSelector(IAudit.RandomnessNotFixed.selector, batchId), v1, batchId, rs, 0, IAudit.Vote.Fail
        );
    }

    /// @dev Commits are accepted until the commit deadline inclusive, for a new audit and an open one alike.
    function test_commitVote_acceptedUntilTheDeadlineInclusive() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(2);
        uint64 deadline = grid.batchAudit(batchId).deadline;
        vm.warp(deadline);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        vm.warp(uint256(deadline) + 1);
        bytes memory err = abi.encodeWithSelector(IAudit.CommitWindowClosed.selector, deadline);
        _expectCommitRevert(err, v2, batchId, rs, 0, IAudit.Vote.Fail);
        _expectCommitRevert(err, v2, batchId, rs, 1, IAudit.Vote.Fail);
    }

    function test_commitVote_revertsOnZeroCommitment() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes memory signature = _signature(rs[0]);
        bytes32[] memory proof = _proof(rs, 0);
        vm.expectRevert(IAudit.InvalidVote.selector);
        vm.prank(v1);
        grid.commitVote(batchId, rs[0], signature, proof, bytes32(0));
        assertEq(grid.getAudit(_leaf(rs[0])).batchId, 0);
    }

    function test_commitVote_revertsOnBadProof() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(4);
        bytes32 commitment = _commitment(v1, _leaf(rs[0]), IAudit.Vote.Fail);
        // another leaf's proof
        _expectCommit(IAudit.InvalidProof.selector, batchId, rs[0], _signature(rs[0]), _proof(rs, 1), commitment);
        // a tampered receipt (signed as tampered: only the proof catches it)
        IAudit.Receipt memory tampered = rs[0];
        tampered.fee += 1;
        _expectCommit(
            IAudit.InvalidProof.selector, batchId, tampered, _signature(tampered), _proof(rs, 0), commitment
        );
        // a receipt of another batch, with its own proof
        IAudit.Receipt[] memory others = _receipts(worker, 1);
        _settle(others);
        _expectCommit(
            IAudit.InvalidProof.selector, batchId, others[0], _signature(others[0]), _proof(others, 0), commitment
        );
    }

    function _expectCommit(
        bytes4 err,
        uint256 batchId,
        IAudit.Receipt memory r,
        bytes memory signature,
        bytes32[] memory proof,
        bytes32 commitment
    ) internal {
        vm.expectRevert(err);
        vm.prank(v1);
        grid.commitVote(batchId, r, signature, proof, commitment);
    }

    /// @dev A gateway that puts another gateway's receipt into its tree cannot have it audited as its own.
    function test_commitVote_revertsForAnotherGatewaysReceipt() public {
        IAudit.Receipt[] memory rs = _receipts(worker, 2);
        address other = makeAddr("other gateway");
        rs[1].gateway = other;
        uint256 batchId = _settle(rs);
        _fix(batchId);
        _expectCommitRevert(
            abi.encodeWithSelector(IAudit.ReceiptNotInBatch.selector, batchId, other, rs[1].seq),
            v1,
            batchId,
            rs,
            1,
            IAudit.Vote.Fail
        );
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
    }

    /// @dev A receipt number outside the batch's range, above or below it, does not belong to the batch.
    function test_commitVote_revertsForASeqOutsideTheRange() public {
        IAudit.Receipt[] memory rs = _receipts(worker, 3);
        uint64 firstSeq = rs[0].seq;
        rs[1].seq = firstSeq + 3; // one past the range [firstSeq, firstSeq + 3)
        rs[2].seq = firstSeq - 1; // the warm batch's number
        uint256 batchId = _settle(rs);
        _fix(batchId);
        assertEq(grid.getBatch(batchId).firstSeq, firstSeq);
        assertEq(grid.getBatch(batchId).receiptCount, 3);
        _expectCommitRevert(
            abi.encodeWithSelector(IAudit.ReceiptNotInBatch.selector, batchId, gateway, firstSeq + 3),
            v1,
            batchId,
            rs,
            1,
            IAudit.Vote.Fail
        );
        _expectCommitRevert(
            abi.encodeWithSelector(IAudit.ReceiptNotInBatch.selector, batchId, gateway, firstSeq - 1),
            v1,
            batchId,
            rs,
            2,
            IAudit.Vote.Fail
        );
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
    }

    /// @dev The same receipt settled again in a later tree: its number lies in the first batch's range only,
    /// so it is audited there and nowhere else, whichever batch is named first.
    function test_commitVote_receiptBelongsToOneBatchOnly() public {
        (uint256 a, IAudit.Receipt[] memory ra) = _fixedBatch(1);
        IAudit.Receipt[] memory rb = new IAudit.Receipt[](2);
        rb[0] = ra[0];
        rb[1] = _receipt(worker);
        uint256 b = _settle(rb);
        _fix(b);
        bytes memory err = abi.encodeWithSelector(IAudit.ReceiptNotInBatch.selector, b, gateway, ra[0].seq);
        _expectCommitRevert(err, v1, b, rb, 0, IAudit.Vote.Fail);
        _commit(v1, a, ra, 0, IAudit.Vote.Fail);
        _expectCommitRevert(err, v2, b, rb, 0, IAudit.Vote.Fail);
        assertEq(grid.getAudit(_leaf(ra[0])).batchId, a);
    }

    /// A confidential receipt is audited like any other (its validators check the attestation it was signed
    /// under): marking jobs confidential does not take them out of the draw.
    function test_commitVote_acceptsAConfidentialReceipt() public {
        IAudit.Receipt[] memory rs = _receipts(worker, 2);
        rs[1].confidential = true;
        uint256 batchId = _settle(rs);
        _fix(batchId);
        assertTrue(grid.isAudited(batchId, _leaf(rs[1]), worker));
        _commit(v1, batchId, rs, 1, IAudit.Vote.Fail);
        assertEq(grid.getAudit(_leaf(rs[1])).batchId, batchId);
    }

    function test_commitVote_revertsWhenNotSelected() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.auditRateBps = 5_000;
        _setConfig(c);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(16);
        uint256 refused;
        for (uint256 i; i < rs.length; ++i) {
            bytes32 leaf = _leaf(rs[i]);
            if (grid.isAudited(batchId, leaf, worker)) continue;
            _expectCommitRevert(
                abi.encodeWithSelector(IAudit.NotAudited.selector, leaf), v1, batchId, rs, i, IAudit.Vote.Fail
            );
            ++refused;
        }
        assertGt(refused, 0);
    }

    function test_commitVote_revertsOnASignatureByAnotherKey() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        // the worker's bond owner key is not its operator key
        uint256 ownerKey = uint256(keccak256(abi.encodePacked("worker")));
        assertEq(vm.addr(ownerKey), worker);
        _expectBadSignature(batchId, rs, _sign(ownerKey, rs[0]), worker);
        uint256 strangerKey = uint256(keccak256("stranger key"));
        _expectBadSignature(batchId, rs, _sign(strangerKey, rs[0]), vm.addr(strangerKey));
    }

    /// @dev The gateway settled a receipt that differs from what the worker signed (any one field).
    function test_commitVote_revertsOnATamperedReceipt() public {
        IAudit.Receipt memory signedOne = _receipt(worker);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(workerKey, grid.receiptDigest(signedOne));
        bytes memory signature = abi.encodePacked(r, s, v);
        IAudit.Receipt[] memory rs = new IAudit.Receipt[](2);
        rs[0] = signedOne;
        rs[0].outputHash = keccak256("not what the worker computed");
        rs[1] = _receipt(worker);
        uint256 batchId = _settle(rs);
        _fix(batchId);
        address recovered = ecrecover(grid.receiptDigest(rs[0]), v, r, s);
        assertTrue(recovered != workerOperator);
        _expectBadSignature(batchId, rs, signature, recovered);
    }

    function test_commitVote_revertsOnAMalleableOrMalformedSignature() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(workerKey, grid.receiptDigest(rs[0]));
        // the same signature in its high-s form recovers the same key, and is refused
        bytes32 highS = bytes32(SECP256K1_N - uint256(s));
        uint8 flipped = v == 27 ? 28 : 27;
        assertEq(ecrecover(grid.receiptDigest(rs[0]), flipped, r, highS), workerOperator);
        _expectBadSignature(batchId, rs, abi.encodePacked(r, highS, flipped), address(0));
        // 64 bytes (EIP-2098 short form), 0 bytes, 66 bytes
        bytes32 vs = bytes32(uint256(s) | (uint256(v - 27) << 255));
        _expectBadSignature(batchId, rs, abi.encodePacked(r, vs), address(0));
        _expectBadSignature(batchId, rs, "", address(0));
        _expectBadSignature(batchId, rs, abi.encodePacked(r, s, v, uint8(0)), address(0));
        // the well-formed one works
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
    }

    function _expectBadSignature(
        uint256 batchId,
        IAudit.Receipt[] memory rs,
        bytes memory signature,
        address signer
    ) internal {
        bytes32 commitment = _commitment(v1, _leaf(rs[0]), IAudit.Vote.Fail);
        bytes32[] memory proof = _proof(rs, 0);
        vm.expectRevert(abi.encodeWithSelector(IAudit.InvalidReceiptSignature.selector, rs[0].worker, signer));
        vm.prank(v1);
        grid.commitVote(batchId, rs[0], signature, proof, commitment);
    }

    function test_commitVote_revertsWhenCallerNotAssigned() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        address stranger = makeAddr("stranger");
        _expectCommitRevert(
            abi.encodeWithSelector(IAudit.NotAssigned.selector, stranger, leaf), stranger, batchId, rs, 0, IAudit.Vote.Fail
        );
        // a bonded worker is no validator
        _expectCommitRevert(
            abi.encodeWithSelector(IAudit.NotAssigned.selector, worker, leaf), worker, batchId, rs, 0, IAudit.Vote.Fail
        );
        // and once the audit is open, a stranger is still refused
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _expectCommitRevert(
            abi.encodeWithSelector(IAudit.NotAssigned.selector, stranger, leaf), stranger, batchId, rs, 0, IAudit.Vote.Fail
        );
    }

    function test_commitVote_revertsWhenValidatorNotDrawn() public {
        address v4 = makeAddr("v4");
        _bondValidator(v4, VALIDATOR_MIN);
        vm.roll(block.number + 1);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        address out = _missing(grid.assignedValidators(batchId, leaf), [v1, v2, v3, v4]);
        _expectCommitRevert(
            abi.encodeWithSelector(IAudit.NotAssigned.selector, out, leaf), out, batchId, rs, 0, IAudit.Vote.Fail
        );
    }

    function test_commitVote_revertsOnSecondCommit() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _expectCommitRevert(
            abi.encodeWithSelector(IAudit.AlreadyCommitted.selector, v1, leaf), v1, batchId, rs, 0, IAudit.Vote.Pass
        );
        assertEq(grid.getAudit(leaf).commits, 1);
    }

    function test_commitVote_worksWhilePaused() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        vm.prank(owner);
        grid.pause();
        _vote3(batchId, rs, 0, IAudit.Vote.Fail, IAudit.Vote.Fail, IAudit.Vote.None);
        grid.finalize(_leaf(rs[0]));
        assertEq(uint8(grid.getAudit(_leaf(rs[0])).verdict), uint8(IAudit.Verdict.Fail));
    }

    /// @dev The only call commitVote makes out of the diamond is to the ecrecover precompile.
    function test_commitVote_onlyCallOutIsEcrecover() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes memory data = abi.encodeCall(
            IAudit.commitVote,
            (batchId, rs[0], _signature(rs[0]), _proof(rs, 0), _commitment(v1, _leaf(rs[0]), IAudit.Vote.Fail))
        );
        vm.startPrank(v1);
        address[] memory outside = _callsOutOfTheDiamond(data);
        vm.stopPrank();
        for (uint256 i; i < outside.length; ++i) {
            assertEq(outside[i], address(1), "commitVote called out of the diamond");
        }
        assertEq(grid.getAudit(_leaf(rs[0])).commits, 1);
    }

    // ================================================================ operator keys (receipt signatures)

    /// @dev A receipt completed before the worker rotated its operator key was signed by the old key, and
    /// still opens an audit after the rotation.
    function test_commitVote_oldKeySignatureBeforeRotation_stillValid() public {
        IAudit.Receipt[] memory rs = _receipts(worker, 1);
        vm.warp(block.timestamp + 1 hours);
        (address newOperator, uint256 newKey) = makeAddrAndKey("worker operator key 2");
        vm.prank(worker);
        grid.setWorkerOperator(newOperator);
        signingKey[worker] = workerKey; // signed by the key of its time
        uint256 batchId = _settle(rs);
        _fix(batchId);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        assertEq(grid.getAudit(_leaf(rs[0])).worker, worker);

        // a receipt completed after the rotation's second needs the new key (in the very second of a rotation
        // the key it replaced still counts: the history holds one key per second)
        vm.warp(block.timestamp + 1);
        IAudit.Receipt[] memory later = _receipts(worker, 1);
        uint256 b = _settle(later);
        _fix(b);
        _expectBadSignature(b, later, _sign(workerKey, later[0]), workerOperator);
        signingKey[worker] = newKey;
        _commit(v1, b, later, 0, IAudit.Vote.Fail);
    }

    /// @dev A worker that signs with its key and replaces it in the same second (and settles then too) cannot
    /// make that receipt unauditable: the key in force the second before still counts.
    function test_commitVote_keyReplacedInTheSecondOfSigning_stillValid() public {
        vm.warp(block.timestamp + 1); // a second after bonding
        IAudit.Receipt[] memory rs = _receipts(worker, 1);
        (address newOperator,) = makeAddrAndKey("worker operator key 2");
        vm.prank(worker);
        grid.setWorkerOperator(newOperator); // same block.timestamp as rs[0].completedAt
        assertEq(grid.workerBond(worker).operator, newOperator);
        signingKey[worker] = workerKey; // signed by the replaced key
        uint256 batchId = _settle(rs);
        _fix(batchId);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        assertEq(grid.getAudit(_leaf(rs[0])).worker, worker);
    }

    /// @dev A key named after a receipt was completed and settled cannot sign it (it could otherwise forge
    /// receipts for the worker's bond); the key of either moment, completion or settlement, can.
    function test_commitVote_newKeyCannotSignForEarlierWork() public {
        IAudit.Receipt[] memory rs = _receipts(worker, 2);
        uint256 batchId = _settle(rs);
        vm.warp(block.timestamp + 1);
        (address newOperator, uint256 newKey) = makeAddrAndKey("worker operator key 2");
        vm.prank(worker);
        grid.setWorkerOperator(newOperator);
        _fix(batchId);
        _expectBadSignature(batchId, rs, _sign(newKey, rs[0]), newOperator);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail); // the old key's signature

        // completed before the rotation but settled after it: the key in force at settlement signs too
        IAudit.Receipt[] memory late = new IAudit.Receipt[](1);
        late[0] = _receipt(worker);
        late[0].completedAt = rs[0].completedAt;
        vm.warp(block.timestamp + 1);
        uint256 b = _settle(late);
        _fix(b);
        signingKey[worker] = newKey;
        _commit(v1, b, late, 0, IAudit.Vote.Fail);
        // a key of neither moment does not
        IAudit.Receipt[] memory other = _receipts(worker, 1);
        other[0].completedAt = rs[0].completedAt;
        uint256 c = _settle(other);
        vm.warp(block.timestamp + 1);
        (address thirdOperator, uint256 thirdKey) = makeAddrAndKey("worker operator key 3");
        vm.prank(worker);
        grid.setWorkerOperator(thirdOperator);
        _fix(c);
        _expectBadSignature(c, other, _sign(thirdKey, other[0]), thirdOperator);
    }

    /// @dev A full withdrawal releases the operator key: it signs nothing for the old owner afterwards, even
    /// once another worker names it.
    function test_commitVote_keyReleasedByWithdrawal_cannotSignForTheOldOwner() public {
        IAudit.Receipt[] memory before = _receipts(worker, 1); // completed while the key was the worker's
        vm.prank(worker);
        grid.requestWorkerUnbond(WORKER_BOND);
        vm.warp(block.timestamp + UNBOND_DELAY);
        vm.prank(worker);
        grid.withdrawWorkerBond();
        assertEq(grid.workerBond(worker).operator, address(0));
        vm.warp(block.timestamp + 1);

        address other = makeAddr("other worker");
        _fund(other, WORKER_MIN);
        vm.prank(other);
        grid.bondWorker(WORKER_MIN, workerOperator); // the released key is free to take
        IAudit.Receipt[] memory rs = new IAudit.Receipt[](2);
        rs[0] = before[0];
        rs[1] = _receipt(worker); // claims the departed worker, completed after the release
        uint256 batchId = _settleCrediting(rs, other);
        _fix(batchId);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail); // history: the old receipt still verifies
        bytes32 commitment = _commitment(v1, _leaf(rs[1]), IAudit.Vote.Fail);
        bytes memory signature = _signature(rs[1]);
        bytes32[] memory proof = _proof(rs, 1);
        vm.expectRevert(abi.encodeWithSelector(IAudit.InvalidReceiptSignature.selector, worker, workerOperator));
        vm.prank(v1);
        grid.commitVote(batchId, rs[1], signature, proof, commitment);
    }

    // ================================================================ revealVote

    function test_revealVote_recordsTheVoteUntilTheRevealDeadlineInclusive() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _commit(v2, batchId, rs, 0, IAudit.Vote.Pass);
        _toReveal(batchId);
        vm.expectEmit(address(grid));
        emit IAudit.Attested(batchId, leaf, v1, IAudit.Vote.Fail, _evidence(v1));
        _reveal(v1, rs[0], IAudit.Vote.Fail);
        (bool committed, IAudit.Vote vote) = grid.voteOf(leaf, v1);
        assertTrue(committed);
        assertEq(uint8(vote), uint8(IAudit.Vote.Fail));
        IAudit.AuditInfo memory a = grid.getAudit(leaf);
        assertEq(a.failVotes, 1);
        assertEq(a.passVotes, 0);
        assertEq(a.commits, 2);

        vm.warp(grid.batchAudit(batchId).revealDeadline);
        _reveal(v2, rs[0], IAudit.Vote.Pass);
        assertEq(grid.getAudit(leaf).passVotes, 1);
    }

    function test_revealVote_revertsWhenNotCommitted() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(2);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _toReveal(batchId);
        // no audit opened on that leaf
        _expectRevealRevert(
            abi.encodeWithSelector(IAudit.NotCommitted.selector, v1, _leaf(rs[1])), v1, rs[1], IAudit.Vote.Fail
        );
        // an open audit, a seated validator that did not commit
        _expectRevealRevert(
            abi.encodeWithSelector(IAudit.NotCommitted.selector, v2, _leaf(rs[0])), v2, rs[0], IAudit.Vote.Fail
        );
    }

    function test_revealVote_revertsDuringTheCommitWindow() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        uint64 deadline = grid.batchAudit(batchId).deadline;
        bytes memory err = abi.encodeWithSelector(IAudit.RevealWindowNotOpen.selector, deadline);
        _expectRevealRevert(err, v1, rs[0], IAudit.Vote.Fail);
        vm.warp(deadline);
        _expectRevealRevert(err, v1, rs[0], IAudit.Vote.Fail);
        vm.warp(uint256(deadline) + 1);
        _reveal(v1, rs[0], IAudit.Vote.Fail);
    }

    function test_revealVote_revertsAfterTheRevealDeadline() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        uint64 revealDeadline = grid.batchAudit(batchId).revealDeadline;
        vm.warp(uint256(revealDeadline) + 1);
        _expectRevealRevert(
            abi.encodeWithSelector(IAudit.RevealWindowClosed.selector, revealDeadline), v1, rs[0], IAudit.Vote.Fail
        );
    }

    function test_revealVote_revertsOnVoteNone() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _commit(v1, batchId, rs, 0, IAudit.Vote.None); // a commitment to None can never be revealed
        _toReveal(batchId);
        _expectRevealRevert(abi.encodeWithSelector(IAudit.InvalidVote.selector), v1, rs[0], IAudit.Vote.None);
    }

    function test_revealVote_revertsOnVoteOutOfRange() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _toReveal(batchId);
        bytes32 leaf = _leaf(rs[0]);
        bytes memory data =
            abi.encodeCall(IAudit.revealVote, (leaf, IAudit.Vote.Fail, _evidence(v1), _salt(v1, leaf)));
        data[4 + 32 + 31] = bytes1(uint8(3)); // the vote is the second head word
        vm.prank(v1);
        (bool ok,) = address(grid).call(data);
        assertFalse(ok);
        (, IAudit.Vote vote) = grid.voteOf(leaf, v1);
        assertEq(uint8(vote), uint8(IAudit.Vote.None));
    }

    function test_revealVote_revertsWhenNotAssigned() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _toReveal(batchId);
        address stranger = makeAddr("stranger");
        _expectRevealRevert(
            abi.encodeWithSelector(IAudit.NotAssigned.selector, stranger, _leaf(rs[0])),
            stranger,
            rs[0],
            IAudit.Vote.Fail
        );
    }

    function test_revealVote_revertsWhenAlreadyRevealed() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _toReveal(batchId);
        _reveal(v1, rs[0], IAudit.Vote.Fail);
        _expectRevealRevert(
            abi.encodeWithSelector(IAudit.AlreadyRevealed.selector, v1, _leaf(rs[0])), v1, rs[0], IAudit.Vote.Fail
        );
        assertEq(grid.getAudit(_leaf(rs[0])).failVotes, 1);
    }

    function test_revealVote_revertsOnCommitmentMismatch() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _toReveal(batchId);
        bytes memory err = abi.encodeWithSelector(IAudit.CommitmentMismatch.selector, v1, leaf);
        // the other vote
        _expectRevealRevert(err, v1, rs[0], IAudit.Vote.Pass);
        // another salt, another evidence hash
        vm.expectRevert(err);
        vm.prank(v1);
        grid.revealVote(leaf, IAudit.Vote.Fail, _evidence(v1), keccak256("other salt"));
        vm.expectRevert(err);
        vm.prank(v1);
        grid.revealVote(leaf, IAudit.Vote.Fail, keccak256("other evidence"), _salt(v1, leaf));
        _reveal(v1, rs[0], IAudit.Vote.Fail);
    }

    /// @dev A validator that copies another's commitment cannot reveal it (the commitment binds the
    /// validator), so copying only gets it slashed as a non-revealer.
    function test_revealVote_copiedCommitment_cannotBeRevealed() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        bytes32 copied = _commitment(v1, leaf, IAudit.Vote.Fail);
        bytes memory signature = _signature(rs[0]);
        bytes32[] memory proof = _proof(rs, 0);
        vm.prank(v2);
        grid.commitVote(batchId, rs[0], signature, proof, copied);
        _commit(v3, batchId, rs, 0, IAudit.Vote.Fail);
        _toReveal(batchId);
        _reveal(v1, rs[0], IAudit.Vote.Fail);
        // v1's exact preimage, revealed by v2
        vm.expectRevert(abi.encodeWithSelector(IAudit.CommitmentMismatch.selector, v2, leaf));
        vm.prank(v2);
        grid.revealVote(leaf, IAudit.Vote.Fail, _evidence(v1), _salt(v1, leaf));
        _reveal(v3, rs[0], IAudit.Vote.Fail);
        _closeWindow(batchId);
        grid.finalize(leaf);
        assertEq(_validatorStake(v2), VALIDATOR_MIN - FALSE_ATTESTATION_SLASH, "the copier is slashed");
        assertEq(grid.earningsOf(v2), 0);
        assertEq(grid.earningsOf(v1), 25e18);
    }

    // ================================================================ gateway fault reports

    bytes32 internal constant FAULT = "RECEIPT_REQUEST_HASH";

    /// @dev `caller` reports a gateway fault on `rs[index]` of `batchId` with the fixture's evidence hash.
    function _report(address caller, uint256 batchId, IAudit.Receipt[] memory rs, uint256 index, bytes32 reason)
        internal
    {
        bytes32[] memory proof = _proof(rs, index);
        vm.prank(caller);
        grid.reportGatewayFault(batchId, _leaf(rs[index]), proof, reason, _evidence(caller));
    }

    /// @dev `_report`, expecting it to revert with `err` (every view call is made before the expectation).
    function _expectReportRevert(
        bytes memory err,
        address caller,
        uint256 batchId,
        IAudit.Receipt[] memory rs,
        uint256 index,
        bytes32 reason
    ) internal {
        bytes32 leaf = _leaf(rs[index]);
        bytes32[] memory proof = _proof(rs, index);
        vm.expectRevert(err);
        vm.prank(caller);
        grid.reportGatewayFault(batchId, leaf, proof, reason, _evidence(caller));
    }

    function test_reportGatewayFault_emitsTheRecord_andMovesNothing() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(4);
        bytes32 leaf = _leaf(rs[2]);
        uint256 balance = aipg.balanceOf(address(grid));
        uint256 pool = grid.validatorPool();
        uint256 fees = grid.protocolFees();
        uint256 workerStake = _workerStake(worker);
        assertFalse(grid.faultReported(leaf, v1));

        vm.expectEmit(address(grid));
        emit IAudit.GatewayFaultReported(gateway, batchId, leaf, v1, FAULT, _evidence(v1));
        _report(v1, batchId, rs, 2, FAULT);

        assertTrue(grid.faultReported(leaf, v1));
        assertFalse(grid.faultReported(leaf, v2));
        assertFalse(grid.faultReported(_leaf(rs[1]), v1));
        // a public record only: no bond, earnings, pool or fee changes, and no audit opens
        assertEq(aipg.balanceOf(address(grid)), balance);
        assertEq(grid.validatorPool(), pool);
        assertEq(grid.protocolFees(), fees);
        assertEq(_workerStake(worker), workerStake);
        assertEq(_validatorStake(v1), VALIDATOR_MIN);
        assertEq(grid.earningsOf(v1), 0);
        assertEq(grid.getAudit(leaf).batchId, 0);

        // other validators report the same leaf once each, with their own reasons
        vm.expectEmit(address(grid));
        emit IAudit.GatewayFaultReported(gateway, batchId, leaf, v2, "PROMPT_MISMATCH", _evidence(v2));
        _report(v2, batchId, rs, 2, "PROMPT_MISMATCH");
        assertTrue(grid.faultReported(leaf, v2));
    }

    /// @dev A reporting validator abstains; the audit of the same receipt still opens and runs with the others.
    function test_reportGatewayFault_leavesTheAuditToTheOtherSeats() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _report(v3, batchId, rs, 0, "RECEIPT_OUTPUT_HASH");
        _commit(v1, batchId, rs, 0, IAudit.Vote.Pass);
        _commit(v2, batchId, rs, 0, IAudit.Vote.Pass);
        _toReveal(batchId);
        _reveal(v1, rs[0], IAudit.Vote.Pass);
        _reveal(v2, rs[0], IAudit.Vote.Pass);
        _closeWindow(batchId);
        grid.finalize(_leaf(rs[0]));
        assertEq(uint8(grid.getAudit(_leaf(rs[0])).verdict), uint8(IAudit.Verdict.Pass));
        assertEq(_validatorStake(v3), VALIDATOR_MIN, "an abstaining reporter is not slashed");
    }

    function test_reportGatewayFault_asOperatorKey_countsForTheOwner() public {
        address hot = makeAddr("v1-hot");
        vm.prank(v1);
        grid.setValidatorOperator(hot);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(2);
        bytes32 leaf = _leaf(rs[1]);
        bytes32[] memory proof = _proof(rs, 1);
        vm.expectEmit(address(grid));
        emit IAudit.GatewayFaultReported(gateway, batchId, leaf, v1, FAULT, _evidence(hot));
        vm.prank(hot);
        grid.reportGatewayFault(batchId, leaf, proof, FAULT, _evidence(hot));
        assertTrue(grid.faultReported(leaf, v1));
        assertFalse(grid.faultReported(leaf, hot));
        // the owner is the same validator: one report per leaf
        _expectReportRevert(
            abi.encodeWithSelector(IAudit.AlreadyReported.selector, v1, leaf), v1, batchId, rs, 1, FAULT
        );
    }

    /// @dev Any active validator may report, seated or not: the record names it, readers weigh it.
    function test_reportGatewayFault_needsNoSeat() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        address late = makeAddr("late validator");
        _bondValidator(late, VALIDATOR_MIN);
        assertEq(grid.assignedValidators(batchId, _leaf(rs[0])).length, 3);
        vm.expectEmit(address(grid));
        emit IAudit.GatewayFaultReported(gateway, batchId, _leaf(rs[0]), late, FAULT, _evidence(late));
        _report(late, batchId, rs, 0, FAULT);
    }

    function test_reportGatewayFault_revertsForANonValidator() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        address stranger = makeAddr("stranger");
        _expectReportRevert(
            abi.encodeWithSelector(IAudit.NotAnActiveValidator.selector, stranger), stranger, batchId, rs, 0, FAULT
        );
        // a worker bond is not a validator bond, nor is a worker's operator key
        _expectReportRevert(
            abi.encodeWithSelector(IAudit.NotAnActiveValidator.selector, worker), worker, batchId, rs, 0, FAULT
        );
        _expectReportRevert(
            abi.encodeWithSelector(IAudit.NotAnActiveValidator.selector, workerOperator),
            workerOperator,
            batchId,
            rs,
            0,
            FAULT
        );
    }

    function test_reportGatewayFault_revertsForAnInactiveValidator() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        address hot = makeAddr("v2-hot");
        vm.startPrank(v2);
        grid.setValidatorOperator(hot);
        grid.requestValidatorUnbond(VALIDATOR_MIN);
        vm.stopPrank();
        bytes memory err = abi.encodeWithSelector(IAudit.NotAnActiveValidator.selector, v2);
        _expectReportRevert(err, v2, batchId, rs, 0, FAULT);
        _expectReportRevert(err, hot, batchId, rs, 0, FAULT);
        // active again once the unbond is cancelled
        vm.prank(v2);
        grid.cancelValidatorUnbond();
        _report(hot, batchId, rs, 0, FAULT);
        assertTrue(grid.faultReported(_leaf(rs[0]), v2));
    }

    function test_reportGatewayFault_revertsWhenUnknownBatch() public {
        IAudit.Receipt[] memory rs = _receipts(worker, 1);
        _expectReportRevert(abi.encodeWithSelector(IAudit.UnknownBatch.selector, 42), v1, 42, rs, 0, FAULT);
    }

    function test_reportGatewayFault_revertsWhenRandomnessNotFixed() public {
        IAudit.Receipt[] memory rs = _receipts(worker, 2);
        uint256 batchId = _settle(rs);
        _expectReportRevert(
            abi.encodeWithSelector(IAudit.RandomnessNotFixed.selector, batchId), v1, batchId, rs, 1, FAULT
        );
    }

    /// @dev Reports belong to the batch's audit period: accepted until the commit deadline inclusive.
    function test_reportGatewayFault_acceptedUntilTheCommitDeadlineInclusive() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(2);
        uint64 deadline = grid.batchAudit(batchId).deadline;
        vm.warp(deadline);
        _report(v1, batchId, rs, 0, FAULT);
        vm.warp(uint256(deadline) + 1);
        bytes memory err = abi.encodeWithSelector(IAudit.CommitWindowClosed.selector, deadline);
        _expectReportRevert(err, v2, batchId, rs, 0, FAULT);
        _expectReportRevert(err, v1, batchId, rs, 1, FAULT);
    }

    function test_reportGatewayFault_revertsOnBadProof() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(4);
        bytes32 leaf = _leaf(rs[0]);
        // another leaf's proof
        bytes32[] memory proof = _proof(rs, 1);
        vm.expectRevert(IAudit.InvalidProof.selector);
        vm.prank(v1);
        grid.reportGatewayFault(batchId, leaf, proof, FAULT, _evidence(v1));
        // a leaf of another batch, with its own proof
        IAudit.Receipt[] memory others = _receipts(worker, 1);
        _settle(others);
        _expectReportRevert(abi.encodeWithSelector(IAudit.InvalidProof.selector), v1, batchId, others, 0, FAULT);
        // an empty proof proves only the root itself
        proof = new bytes32[](0);
        vm.expectRevert(IAudit.InvalidProof.selector);
        vm.prank(v1);
        grid.reportGatewayFault(batchId, leaf, proof, FAULT, _evidence(v1));
        assertFalse(grid.faultReported(leaf, v1));
    }

    function test_reportGatewayFault_revertsOnADuplicate() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(2);
        _report(v1, batchId, rs, 0, FAULT);
        // the same leaf again, with another reason or evidence: still one report
        _expectReportRevert(
            abi.encodeWithSelector(IAudit.AlreadyReported.selector, v1, _leaf(rs[0])),
            v1,
            batchId,
            rs,
            0,
            "FEE_MISMATCH"
        );
        // another leaf of the batch is another report
        _report(v1, batchId, rs, 1, FAULT);
    }

    function test_reportGatewayFault_revertsOnZeroReason() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _expectReportRevert(abi.encodeWithSelector(IAudit.InvalidFaultReason.selector), v1, batchId, rs, 0, 0);
        // checked first: even a stranger on an unknown batch hears about the reason
        _expectReportRevert(
            abi.encodeWithSelector(IAudit.InvalidFaultReason.selector), makeAddr("stranger"), 42, rs, 0, 0
        );
    }

    /// @dev Any non-zero reason and any evidence hash are recorded verbatim (the chain does not read them).
    function testFuzz_reportGatewayFault_recordsReasonAndEvidenceVerbatim(bytes32 reason, bytes32 evidenceHash)
        public
    {
        vm.assume(reason != bytes32(0));
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(3);
        bytes32 leaf = _leaf(rs[1]);
        bytes32[] memory proof = _proof(rs, 1);
        vm.expectEmit(address(grid));
        emit IAudit.GatewayFaultReported(gateway, batchId, leaf, v3, reason, evidenceHash);
        vm.prank(v3);
        grid.reportGatewayFault(batchId, leaf, proof, reason, evidenceHash);
    }

    // ================================================================ finalize: reverts

    function test_finalize_revertsWhenNobodyCommitted() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _closeWindow(batchId);
        vm.expectRevert(abi.encodeWithSelector(IAudit.NothingToFinalize.selector, _leaf(rs[0])));
        grid.finalize(_leaf(rs[0]));
        vm.expectRevert(abi.encodeWithSelector(IAudit.NothingToFinalize.selector, bytes32(0)));
        grid.finalize(bytes32(0));
    }

    function test_finalize_revertsUntilAfterTheRevealDeadline() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        uint64 revealDeadline = grid.batchAudit(batchId).revealDeadline;
        bytes memory err = abi.encodeWithSelector(IAudit.AuditWindowOpen.selector, revealDeadline);
        vm.expectRevert(err); // commit window
        grid.finalize(_leaf(rs[0]));
        _toReveal(batchId);
        vm.expectRevert(err); // reveal window
        grid.finalize(_leaf(rs[0]));
        vm.warp(revealDeadline);
        vm.expectRevert(err);
        grid.finalize(_leaf(rs[0]));
        vm.warp(uint256(revealDeadline) + 1);
        grid.finalize(_leaf(rs[0]));
    }

    function test_finalize_revertsWhenAlreadyFinalized() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _vote3(batchId, rs, 0, IAudit.Vote.Fail, IAudit.Vote.Fail, IAudit.Vote.None);
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
        _vote3(batchId, rs, 0, IAudit.Vote.Fail, IAudit.Vote.Fail, IAudit.Vote.Fail);
        uint256 fees = grid.protocolFees();
        uint256 pool = grid.validatorPool();
        uint256 balance = aipg.balanceOf(address(grid));

        // 100 AIPG slashed: 50 to the finders, 16.666… each; the rest (50 AIPG + 2 wei of dust) to the treasury
        uint256 each = uint256(50e18) / 3;
        address[] memory seats = grid.assignedValidators(batchId, leaf);
        vm.expectEmit(address(grid));
        emit IBonding.BondSlashed(IBonding.Role.Worker, worker, WORKER_SLASH);
        for (uint256 i; i < seats.length; ++i) {
            vm.expectEmit(address(grid));
            emit IAudit.ValidatorRewarded(leaf, seats[i], each);
        }
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
        assertEq(grid.getBatch(batchId).rewardLeft, 3e17, "a FAIL takes nothing from the batch share");
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
        _vote3(batchId, rs, 0, IAudit.Vote.Fail, IAudit.Vote.Fail, IAudit.Vote.Pass);
        uint256 pool = grid.validatorPool();
        uint256 fees = grid.protocolFees();

        vm.expectEmit(address(grid));
        emit IBonding.BondSlashed(IBonding.Role.Validator, v3, FALSE_ATTESTATION_SLASH);
        vm.expectEmit(address(grid));
        emit IAudit.FalseAttestationSlashed(leaf, v3, FALSE_ATTESTATION_SLASH);
        vm.expectEmit(address(grid));
        emit IBonding.BondSlashed(IBonding.Role.Worker, worker, WORKER_SLASH);
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

    /// @dev Two receipts paid 0.3 AIPG into the validator share: exactly the three rewards of 0.1.
    function test_finalize_unanimousPass_paysFromTheBatchShare() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(2);
        bytes32 leaf = _leaf(rs[0]);
        assertEq(grid.getBatch(batchId).rewardLeft, 3 * PASS_REWARD);
        _vote3(batchId, rs, 0, IAudit.Vote.Pass, IAudit.Vote.Pass, IAudit.Vote.Pass);
        uint256 pool = grid.validatorPool();
        uint256 stake = _workerStake(worker);

        address[] memory seats = grid.assignedValidators(batchId, leaf);
        for (uint256 i; i < seats.length; ++i) {
            vm.expectEmit(address(grid));
            emit IAudit.ValidatorRewarded(leaf, seats[i], PASS_REWARD);
        }
        vm.expectEmit(address(grid));
        emit IAudit.AuditFinalized(batchId, leaf, worker, IAudit.Verdict.Pass, 0);
        grid.finalize(leaf);

        assertEq(pool - grid.validatorPool(), 3 * PASS_REWARD);
        assertEq(grid.getBatch(batchId).rewardLeft, 0);
        assertEq(grid.earningsOf(v1), PASS_REWARD);
        assertEq(grid.earningsOf(v2), PASS_REWARD);
        assertEq(grid.earningsOf(v3), PASS_REWARD);
        assertEq(_workerStake(worker), stake);
        assertEq(grid.workerAuditRate(worker), 0);
    }

    function test_finalize_passMajority_slashesTheFailVoterIntoThePool() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(2);
        bytes32 leaf = _leaf(rs[0]);
        _vote3(batchId, rs, 0, IAudit.Vote.Pass, IAudit.Vote.Fail, IAudit.Vote.Pass);
        uint256 pool = grid.validatorPool();

        vm.expectEmit(address(grid));
        emit IAudit.FalseAttestationSlashed(leaf, v2, FALSE_ATTESTATION_SLASH);
        grid.finalize(leaf);

        assertEq(_validatorStake(v2), VALIDATOR_MIN - FALSE_ATTESTATION_SLASH);
        assertEq(_validatorStake(v1), VALIDATOR_MIN);
        assertEq(_validatorStake(v3), VALIDATOR_MIN);
        assertEq(grid.earningsOf(v1), PASS_REWARD);
        assertEq(grid.earningsOf(v3), PASS_REWARD);
        assertEq(grid.validatorPool(), pool + FALSE_ATTESTATION_SLASH - 2 * PASS_REWARD);
        assertEq(grid.earningsOf(v2), 0);
    }

    /// @dev One receipt paid 0.15 AIPG into the validator share: the three PASS voters share at most that,
    /// although the pool holds over 15 AIPG.
    function test_finalize_passRewards_cappedByTheBatchNotThePool() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        _vote3(batchId, rs, 0, IAudit.Vote.Pass, IAudit.Vote.Pass, IAudit.Vote.Pass);
        uint256 pool = grid.validatorPool();
        assertGt(pool, 15e18);
        address[] memory seats = grid.assignedValidators(batchId, leaf);
        uint256[3] memory expected = [PASS_REWARD, 15e16 - PASS_REWARD, 0];
        for (uint256 i; i < 3; ++i) {
            vm.expectEmit(address(grid));
            emit IAudit.ValidatorRewarded(leaf, seats[i], expected[i]);
        }
        grid.finalize(leaf);
        for (uint256 i; i < 3; ++i) {
            assertEq(grid.earningsOf(seats[i]), expected[i]);
        }
        assertEq(pool - grid.validatorPool(), 15e16);
        assertEq(grid.getBatch(batchId).rewardLeft, 0);
    }

    /// @dev Two audits of one small batch: the second is paid only what the first left of the batch's share.
    function test_finalize_passRewards_secondAuditGetsWhatIsLeft() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.passReward = 8e16;
        _setConfig(c);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(2); // 0.3 AIPG into the share
        address[3] memory vs = [v1, v2, v3];
        for (uint256 i; i < 3; ++i) {
            _commit(vs[i], batchId, rs, 0, IAudit.Vote.Pass);
            _commit(vs[i], batchId, rs, 1, IAudit.Vote.Pass);
        }
        _toReveal(batchId);
        for (uint256 i; i < 3; ++i) {
            _reveal(vs[i], rs[0], IAudit.Vote.Pass);
            _reveal(vs[i], rs[1], IAudit.Vote.Pass);
        }
        _closeWindow(batchId);
        uint256 pool = grid.validatorPool();

        grid.finalize(_leaf(rs[0]));
        assertEq(grid.earningsOf(v1) + grid.earningsOf(v2) + grid.earningsOf(v3), 24e16);
        assertEq(grid.getBatch(batchId).rewardLeft, 6e16);

        address[] memory seats = grid.assignedValidators(batchId, _leaf(rs[1]));
        uint256[3] memory earned = [grid.earningsOf(seats[0]), grid.earningsOf(seats[1]), grid.earningsOf(seats[2])];
        grid.finalize(_leaf(rs[1]));
        assertEq(grid.earningsOf(seats[0]) - earned[0], 6e16);
        assertEq(grid.earningsOf(seats[1]), earned[1]);
        assertEq(grid.earningsOf(seats[2]), earned[2]);
        assertEq(grid.getBatch(batchId).rewardLeft, 0);
        assertEq(pool - grid.validatorPool(), 3e17, "the pool paid exactly what the batch put in");
    }

    function test_finalize_tie_isInconclusive() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _vote3(batchId, rs, 0, IAudit.Vote.Pass, IAudit.Vote.Fail, IAudit.Vote.None);
        _assertInconclusive(rs);
    }

    function test_finalize_belowQuorum_isInconclusive() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _vote3(batchId, rs, 0, IAudit.Vote.None, IAudit.Vote.Fail, IAudit.Vote.None);
        _assertInconclusive(rs);
    }

    function _assertInconclusive(IAudit.Receipt[] memory rs) internal {
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

    /// @dev A seated validator that never commits earns nothing, loses nothing and is named in no event.
    function test_finalize_silentSeat_earnsAndLosesNothing() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _vote3(batchId, rs, 0, IAudit.Vote.Fail, IAudit.Vote.Fail, IAudit.Vote.None);
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

    /// @dev PASS: a validator that committed and did not reveal is slashed into the pool, paid nothing.
    function test_finalize_nonRevealer_slashedUnderPass() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(2);
        bytes32 leaf = _leaf(rs[0]);
        _commitRevealExcept(batchId, rs, IAudit.Vote.Pass, IAudit.Vote.Pass, IAudit.Vote.Pass, v3);
        uint256 pool = grid.validatorPool();
        vm.expectEmit(address(grid));
        emit IAudit.FalseAttestationSlashed(leaf, v3, FALSE_ATTESTATION_SLASH);
        grid.finalize(leaf);
        assertEq(uint8(grid.getAudit(leaf).verdict), uint8(IAudit.Verdict.Pass));
        assertEq(_validatorStake(v3), VALIDATOR_MIN - FALSE_ATTESTATION_SLASH);
        assertEq(grid.earningsOf(v3), 0);
        assertEq(grid.earningsOf(v1), PASS_REWARD);
        assertEq(grid.earningsOf(v2), PASS_REWARD);
        assertEq(grid.validatorPool(), pool + FALSE_ATTESTATION_SLASH - 2 * PASS_REWARD);
    }

    /// @dev FAIL: the non-revealer is slashed, and is no finder.
    function test_finalize_nonRevealer_slashedUnderFail() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        _commitRevealExcept(batchId, rs, IAudit.Vote.Fail, IAudit.Vote.Fail, IAudit.Vote.Fail, v3);
        uint256 pool = grid.validatorPool();
        grid.finalize(leaf);
        assertEq(uint8(grid.getAudit(leaf).verdict), uint8(IAudit.Verdict.Fail));
        assertEq(_validatorStake(v3), VALIDATOR_MIN - FALSE_ATTESTATION_SLASH);
        assertEq(grid.earningsOf(v3), 0);
        assertEq(grid.earningsOf(v1), 25e18);
        assertEq(grid.earningsOf(v2), 25e18);
        assertEq(grid.validatorPool(), pool + FALSE_ATTESTATION_SLASH);
    }

    /// @dev Inconclusive: the non-revealers are slashed (their silence made it inconclusive), the one who
    /// revealed is not.
    function test_finalize_nonRevealers_slashedUnderInconclusive() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        bytes32 leaf = _leaf(rs[0]);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _commit(v2, batchId, rs, 0, IAudit.Vote.Pass);
        _commit(v3, batchId, rs, 0, IAudit.Vote.Pass);
        _toReveal(batchId);
        _reveal(v1, rs[0], IAudit.Vote.Fail);
        _closeWindow(batchId);
        uint256 pool = grid.validatorPool();
        uint256 workerStake = _workerStake(worker);
        grid.finalize(leaf);
        assertEq(uint8(grid.getAudit(leaf).verdict), uint8(IAudit.Verdict.Inconclusive));
        assertEq(_validatorStake(v1), VALIDATOR_MIN);
        assertEq(_validatorStake(v2), VALIDATOR_MIN - FALSE_ATTESTATION_SLASH);
        assertEq(_validatorStake(v3), VALIDATOR_MIN - FALSE_ATTESTATION_SLASH);
        assertEq(grid.validatorPool(), pool + 2 * FALSE_ATTESTATION_SLASH);
        assertEq(grid.earningsOf(v1) + grid.earningsOf(v2) + grid.earningsOf(v3), 0);
        assertEq(_workerStake(worker), workerStake);
    }

    /// @dev All seated validators commit; all but `hidden` reveal `a`, `b`, `c`; the windows close.
    function _commitRevealExcept(
        uint256 batchId,
        IAudit.Receipt[] memory rs,
        IAudit.Vote a,
        IAudit.Vote b,
        IAudit.Vote c,
        address hidden
    ) internal {
        address[3] memory vs = [v1, v2, v3];
        IAudit.Vote[3] memory votes = [a, b, c];
        for (uint256 i; i < 3; ++i) {
            _commit(vs[i], batchId, rs, 0, votes[i]);
        }
        _toReveal(batchId);
        for (uint256 i; i < 3; ++i) {
            if (vs[i] != hidden) _reveal(vs[i], rs[0], votes[i]);
        }
        _closeWindow(batchId);
    }

    /// @dev A worker that withdraws most of its bond before the verdict loses what is left, no more.
    function test_finalize_workerSlash_cappedAtWhatItHasLeft() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _commit(v2, batchId, rs, 0, IAudit.Vote.Fail);
        _fund(worker, 50e18);
        vm.startPrank(worker);
        grid.requestWorkerUnbond(WORKER_BOND);
        grid.increaseWorkerBond(50e18);
        vm.stopPrank();
        _toReveal(batchId);
        _reveal(v1, rs[0], IAudit.Vote.Fail);
        _reveal(v2, rs[0], IAudit.Vote.Fail);
        vm.warp(grid.workerBond(worker).unbondReadyAt);
        vm.prank(worker);
        grid.withdrawWorkerBond();
        assertEq(_workerStake(worker), 50e18);
        vm.expectEmit(address(grid));
        emit IAudit.AuditFinalized(batchId, _leaf(rs[0]), worker, IAudit.Verdict.Fail, 50e18);
        grid.finalize(_leaf(rs[0]));
        assertEq(_workerStake(worker), 0);
        assertFalse(grid.isActiveWorker(worker));
        assertEq(grid.earningsOf(v1), uint256(50e18) * FINDER_SHARE_BPS / BPS / 2);
        assertEq(grid.getAudit(_leaf(rs[0])).slashed, 50e18);
    }

    function test_finalize_slashesAnUnbondingWorker() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Fail);
        _commit(v2, batchId, rs, 0, IAudit.Vote.Fail);
        vm.prank(worker);
        grid.requestWorkerUnbond(WORKER_BOND); // trying to run
        _toReveal(batchId);
        _reveal(v1, rs[0], IAudit.Vote.Fail);
        _reveal(v2, rs[0], IAudit.Vote.Fail);
        _closeWindow(batchId);
        grid.finalize(_leaf(rs[0]));
        assertEq(grid.workerBond(worker).unbonding, WORKER_BOND - WORKER_SLASH);
    }

    /// @dev A validator on the losing side that withdrew most of its bond loses what is left, no more.
    function test_finalize_falseAttestationSlash_cappedAtTheValidatorsBond() public {
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(2);
        bytes32 leaf = _leaf(rs[0]);
        _commit(v1, batchId, rs, 0, IAudit.Vote.Pass);
        _commit(v2, batchId, rs, 0, IAudit.Vote.Pass);
        _commit(v3, batchId, rs, 0, IAudit.Vote.Fail);
        _fund(v3, 100e18);
        vm.startPrank(v3);
        grid.requestValidatorUnbond(VALIDATOR_MIN);
        grid.increaseValidatorBond(100e18);
        vm.stopPrank();
        _toReveal(batchId);
        _reveal(v1, rs[0], IAudit.Vote.Pass);
        _reveal(v2, rs[0], IAudit.Vote.Pass);
        _reveal(v3, rs[0], IAudit.Vote.Fail);
        vm.warp(grid.validatorBond(v3).unbondReadyAt);
        vm.prank(v3);
        grid.withdrawValidatorBond();
        uint256 pool = grid.validatorPool();
        vm.expectEmit(address(grid));
        emit IAudit.FalseAttestationSlashed(leaf, v3, 100e18);
        grid.finalize(leaf);
        assertEq(_validatorStake(v3), 0);
        assertEq(grid.validatorBond(v3).operator, address(0), "operator key freed");
        assertEq(grid.validatorPool(), pool + 100e18 - 2 * PASS_REWARD);
    }

    function test_finalize_finderShareZero_allToTreasury() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.finderShareBps = 0;
        _setConfig(c);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _vote3(batchId, rs, 0, IAudit.Vote.Fail, IAudit.Vote.Fail, IAudit.Vote.None);
        uint256 fees = grid.protocolFees();
        grid.finalize(_leaf(rs[0]));
        assertEq(grid.protocolFees() - fees, WORKER_SLASH);
        assertEq(grid.earningsOf(v1), 0);
    }

    /// @dev A config applied after a batch was fixed changes nothing for that batch: not its windows, not its
    /// seats, not its quorum, slash or shares. Batches fixed afterwards use the new one.
    function test_finalize_usesTheConfigFrozenAtFixing() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.validatorsPerAudit = 5;
        c.quorum = 3;
        c.commitWindow = 1 days;
        c.revealWindow = 1 days;
        c.workerSlashAmount = 1;
        c.finderShareBps = 0;
        vm.prank(owner);
        grid.announceAuditConfig(c);
        vm.warp(block.timestamp + CUT_DELAY);
        _bondValidator(makeAddr("v4"), VALIDATOR_MIN);
        _bondValidator(makeAddr("v5"), VALIDATOR_MIN);
        vm.roll(block.number + 1);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        IAudit.BatchAudit memory fixedWith = grid.batchAudit(batchId);
        address[] memory seats = grid.assignedValidators(batchId, _leaf(rs[0]));
        vm.prank(owner);
        grid.setAuditConfig(c);

        assertEq(grid.batchAudit(batchId).deadline, fixedWith.deadline);
        assertEq(grid.batchAudit(batchId).revealDeadline, fixedWith.revealDeadline);
        assertEq(fixedWith.deadline, fixedWith.fixedAt + COMMIT_WINDOW);
        _assertSameList(grid.assignedValidators(batchId, _leaf(rs[0])), seats);
        assertEq(seats.length, VALIDATORS_PER_AUDIT);
        address[] memory voters = new address[](2);
        voters[0] = seats[0];
        voters[1] = seats[1];
        IAudit.Vote[] memory votes = new IAudit.Vote[](2);
        votes[0] = IAudit.Vote.Fail;
        votes[1] = IAudit.Vote.Fail;
        _vote(batchId, rs, 0, voters, votes);
        grid.finalize(_leaf(rs[0]));
        assertEq(
            uint8(grid.getAudit(_leaf(rs[0])).verdict), uint8(IAudit.Verdict.Fail), "quorum 2 of its config"
        );
        assertEq(grid.getAudit(_leaf(rs[0])).slashed, WORKER_SLASH);
        assertEq(grid.earningsOf(seats[0]), 25e18);

        (uint256 later,) = _fixedBatch(1);
        assertEq(grid.batchAudit(later).deadline, block.timestamp + 1 days);
    }

    function test_finalize_failOnAFullyAuditedWorker_doesNotResetItsRate() public {
        vm.prank(owner);
        grid.setWorkerAuditRate(worker, BPS);
        (uint256 batchId, IAudit.Receipt[] memory rs) = _fixedBatch(1);
        _vote3(batchId, rs, 0, IAudit.Vote.Fail, IAudit.Vote.Fail, IAudit.Vote.None);
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
        _vote3(batchId, rs, 0, IAudit.Vote.Fail, IAudit.Vote.Fail, IAudit.Vote.None);
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
        _vote3(batchId, rs, 0, IAudit.Vote.Fail, IAudit.Vote.Fail, IAudit.Vote.Pass);
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
        _vote3(batchId, rs, 0, IAudit.Vote.Fail, IAudit.Vote.Pass, IAudit.Vote.Fail);
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
        uint256 rewardLeft;
    }

    struct VerdictInput {
        uint256 seed;
        uint256 nPass;
        uint256 nFail;
        uint256 nHidden;
        uint256 quorum;
        uint256 workerSlash;
        uint16 finderBps;
        uint256 falseSlash;
        uint256 passReward;
        uint256 receipts;
    }

    /// @dev vs[0 .. nPass) reveal PASS, the next nFail reveal FAIL, the next nHidden commit and never reveal,
    /// the rest never commit.
    struct VerdictCase {
        address[] vs;
        uint256 nPass;
        uint256 nFail;
        uint256 nHidden;
        IAudit.AuditConfig c;
        uint256 batchId;
        bytes32 leaf;
    }

    function testFuzz_finalize_verdictArithmetic(VerdictInput memory input) public {
        VerdictCase memory k = _verdictCase(input);
        Snapshot memory s = _snapshot(k);
        uint256 liabilities = _liabilities(_accounts(k.vs));
        assertEq(liabilities, s.balance);
        IAudit.AuditInfo memory info = grid.getAudit(k.leaf);
        assertEq(info.seats, 8);
        assertEq(info.commits, k.nPass + k.nFail + k.nHidden);
        grid.finalize(k.leaf);

        IAudit.Verdict verdict = k.nPass + k.nFail < k.c.quorum || k.nPass == k.nFail
            ? IAudit.Verdict.Inconclusive
            : (k.nFail > k.nPass ? IAudit.Verdict.Fail : IAudit.Verdict.Pass);
        assertEq(uint8(grid.getAudit(k.leaf).verdict), uint8(verdict));
        uint256 toPool;
        for (uint256 i = k.nPass + k.nFail; i < k.nPass + k.nFail + k.nHidden; ++i) {
            toPool += _falseSlash(k, s, i);
        }
        (uint256 workerSlashed, uint256 losers, uint256 fromPool) = verdict == IAudit.Verdict.Fail
            ? _checkFail(k, s)
            : verdict == IAudit.Verdict.Pass ? _checkPass(k, s) : _checkInconclusive(k, s);
        toPool += losers;
        for (uint256 i = k.nPass + k.nFail + k.nHidden; i < k.vs.length; ++i) {
            assertEq(_validatorStake(k.vs[i]), s.stake[i], "silent");
            assertEq(grid.earningsOf(k.vs[i]), s.earned[i], "silent");
        }
        assertEq(s.workerStake - _workerStake(worker), workerSlashed);
        assertEq(grid.getAudit(k.leaf).slashed, workerSlashed);
        assertEq(grid.validatorPool(), s.pool + toPool - fromPool);
        assertEq(s.rewardLeft - grid.getBatch(k.batchId).rewardLeft, fromPool, "rewards come from the batch");
        assertEq(aipg.balanceOf(address(grid)), s.balance, "no token moved");
        assertEq(_liabilities(_accounts(k.vs)), liabilities, "nothing created or lost");
    }

    /// @dev Eight validators, k = 8 (all seated).
    function _verdictCase(VerdictInput memory input) internal returns (VerdictCase memory k) {
        k.vs = _eightValidators(input.seed);
        k.nPass = bound(input.nPass, 0, 8);
        k.nFail = bound(input.nFail, 0, 8 - k.nPass);
        k.nHidden = bound(input.nHidden, k.nPass + k.nFail == 0 ? 1 : 0, 8 - k.nPass - k.nFail);
        k.c = _defaultAuditConfig();
        k.c.validatorsPerAudit = 8;
        k.c.quorum = uint8(bound(input.quorum, 5, 8));
        k.c.workerSlashAmount = bound(input.workerSlash, 0, WORKER_MIN * MAX_WORKER_SLASH_BPS / BPS);
        k.c.finderShareBps = uint16(bound(input.finderBps, 0, MAX_FINDER_SHARE_BPS));
        k.c.falseAttestationSlash = bound(input.falseSlash, 0, VALIDATOR_MIN * MAX_FALSE_SLASH_BPS / BPS);
        k.c.passReward = bound(input.passReward, 0, 5e17);
        _setConfig(k.c);
        IAudit.Receipt[] memory rs = _receipts(worker, bound(input.receipts, 1, 4));
        k.batchId = _settle(rs);
        _fix(k.batchId);
        k.leaf = _leaf(rs[0]);
        uint256 committing = k.nPass + k.nFail + k.nHidden;
        for (uint256 i; i < committing; ++i) {
            _commit(k.vs[i], k.batchId, rs, 0, _caseVote(k, i, input.seed));
        }
        _toReveal(k.batchId);
        for (uint256 i; i < k.nPass + k.nFail; ++i) {
            _reveal(k.vs[i], rs[0], _caseVote(k, i, input.seed));
        }
        _closeWindow(k.batchId);
    }

    function _caseVote(VerdictCase memory k, uint256 i, uint256 seed) internal pure returns (IAudit.Vote) {
        if (i < k.nPass) return IAudit.Vote.Pass;
        if (i < k.nPass + k.nFail) return IAudit.Vote.Fail;
        return uint256(keccak256(abi.encode(seed, i))) % 2 == 0 ? IAudit.Vote.Pass : IAudit.Vote.Fail;
    }

    function _falseSlash(VerdictCase memory k, Snapshot memory s, uint256 i)
        internal
        view
        returns (uint256 taken)
    {
        taken = k.c.falseAttestationSlash < s.stake[i] ? k.c.falseAttestationSlash : s.stake[i];
        assertEq(s.stake[i] - _validatorStake(k.vs[i]), taken, "against the verdict or silent after commit");
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

    /// @dev PASS voters are paid in seat order, each min(passReward, what is left of the batch's share).
    function _checkPass(VerdictCase memory k, Snapshot memory s)
        internal
        view
        returns (uint256 workerSlashed, uint256 toPool, uint256 fromPool)
    {
        for (uint256 i = k.nPass; i < k.nPass + k.nFail; ++i) {
            toPool += _falseSlash(k, s, i);
        }
        address[] memory seats = grid.assignedValidators(k.batchId, k.leaf);
        uint256 left = s.rewardLeft;
        for (uint256 j; j < seats.length; ++j) {
            uint256 i = _indexOf(k.vs, seats[j]);
            if (i >= k.nPass) continue;
            uint256 paid = k.c.passReward < left ? k.c.passReward : left;
            left -= paid;
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

    // ================================================================ governance: audit config

    function test_auditConfig_announcedThenApplied() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.auditRateBps = 200;
        c.validatorsPerAudit = 5;
        c.quorum = 3;
        c.commitWindow = 1 days;
        c.revealWindow = 2 hours;
        c.passReward = 2e18;
        bytes32 id = grid.hashAuditConfig(c);
        uint64 executableAt = uint64(block.timestamp) + CUT_DELAY;
        uint64 expiresAt = executableAt + CHANGE_WINDOW;
        vm.expectEmit(address(grid));
        emit IAudit.AuditConfigAnnounced(id, c, executableAt, expiresAt);
        vm.prank(owner);
        assertEq(grid.announceAuditConfig(c), id);
        (uint64 e, uint64 x) = grid.pendingChange(id);
        assertEq(e, executableAt);
        assertEq(x, expiresAt);
        assertEq(grid.auditConfig().quorum, QUORUM, "nothing applies before the delay");

        vm.warp(executableAt);
        vm.expectEmit(address(grid));
        emit IAudit.AuditConfigUpdated(c);
        vm.prank(owner);
        grid.setAuditConfig(c);
        IAudit.AuditConfig memory got = grid.auditConfig();
        assertEq(got.auditRateBps, 200);
        assertEq(got.validatorsPerAudit, 5);
        assertEq(got.quorum, 3);
        assertEq(got.commitWindow, 1 days);
        assertEq(got.revealWindow, 2 hours);
        assertEq(got.passReward, 2e18);
        (e,) = grid.pendingChange(id);
        assertEq(e, 0, "consumed");
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, id));
        vm.prank(owner);
        grid.setAuditConfig(c);

        (uint256 batchId,) = _fixedBatch(1);
        assertEq(grid.batchAudit(batchId).deadline, block.timestamp + 1 days);
        assertEq(grid.batchAudit(batchId).revealDeadline, block.timestamp + 1 days + 2 hours);
    }

    function test_setAuditConfig_revertsWhenNotAnnounced() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.passReward = 1;
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, grid.hashAuditConfig(c)));
        vm.prank(owner);
        grid.setAuditConfig(c);
        // announcing one config does not allow another
        IAudit.AuditConfig memory announced = _defaultAuditConfig();
        announced.passReward = 2;
        vm.prank(owner);
        grid.announceAuditConfig(announced);
        vm.warp(block.timestamp + CUT_DELAY);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, grid.hashAuditConfig(c)));
        vm.prank(owner);
        grid.setAuditConfig(c);
    }

    function test_setAuditConfig_revertsBeforeTheDelay() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.passReward = 1;
        vm.prank(owner);
        bytes32 id = grid.announceAuditConfig(c);
        uint64 executableAt = uint64(block.timestamp) + CUT_DELAY;
        vm.warp(executableAt - 1);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotReady.selector, id, executableAt));
        vm.prank(owner);
        grid.setAuditConfig(c);
        vm.warp(executableAt);
        vm.prank(owner);
        grid.setAuditConfig(c);
        assertEq(grid.auditConfig().passReward, 1);
    }

    function test_setAuditConfig_revertsAfterTheWindow() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.passReward = 1;
        vm.prank(owner);
        bytes32 id = grid.announceAuditConfig(c);
        uint64 expiresAt = uint64(block.timestamp) + CUT_DELAY + CHANGE_WINDOW;
        vm.warp(uint256(expiresAt) + 1);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeExpired.selector, id, expiresAt));
        vm.prank(owner);
        grid.setAuditConfig(c);
        // announced again, the last second of the window still works
        vm.prank(owner);
        grid.announceAuditConfig(c);
        vm.warp(block.timestamp + CUT_DELAY + CHANGE_WINDOW);
        vm.prank(owner);
        grid.setAuditConfig(c);
        assertEq(grid.auditConfig().passReward, 1);
    }

    function test_setAuditConfig_revertsWhenCancelled() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.passReward = 1;
        vm.startPrank(owner);
        bytes32 id = grid.announceAuditConfig(c);
        vm.expectEmit(address(grid));
        emit ICutTimelock.ChangeCancelled(id);
        grid.cancelChange(id);
        vm.warp(block.timestamp + CUT_DELAY);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, id));
        grid.setAuditConfig(c);
        vm.stopPrank();
    }

    function test_auditConfig_onlyOwner() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, address(this)));
        grid.announceAuditConfig(c);
        vm.prank(owner);
        grid.announceAuditConfig(c);
        vm.warp(block.timestamp + CUT_DELAY);
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, address(this)));
        grid.setAuditConfig(c);
    }

    /// @dev No announcement can go past the deployment's limits.
    function test_announceAuditConfig_revertsOutsideTheLimits() public {
        IAudit.AuditConfig memory c = _defaultAuditConfig();
        c.auditRateBps = 10_001;
        _expectAnnounceRevert(c, "auditRateBps");
        c = _defaultAuditConfig();
        c.validatorsPerAudit = MIN_VALIDATORS_PER_AUDIT - 1;
        c.quorum = 2;
        _expectAnnounceRevert(c, "validatorsPerAudit");
        c = _defaultAuditConfig();
        c.quorum = MIN_QUORUM - 1;
        _expectAnnounceRevert(c, "quorum");
        c = _defaultAuditConfig();
        c.quorum = VALIDATORS_PER_AUDIT + 1;
        _expectAnnounceRevert(c, "quorum");
        c = _defaultAuditConfig();
        c.validatorsPerAudit = 6;
        c.quorum = 3; // half is no majority
        _expectAnnounceRevert(c, "quorum");
        c = _defaultAuditConfig();
        c.commitWindow = MIN_COMMIT_WINDOW - 1;
        _expectAnnounceRevert(c, "commitWindow");
        c = _defaultAuditConfig();
        c.revealWindow = MIN_REVEAL_WINDOW - 1;
        _expectAnnounceRevert(c, "revealWindow");
        c = _defaultAuditConfig();
        c.finderShareBps = MAX_FINDER_SHARE_BPS + 1;
        _expectAnnounceRevert(c, "finderShareBps");
        c = _defaultAuditConfig();
        c.workerSlashAmount = WORKER_MIN * MAX_WORKER_SLASH_BPS / BPS + 1; // above 20% of the worker minimum
        _expectAnnounceRevert(c, "workerSlashAmount");
        c = _defaultAuditConfig();
        c.falseAttestationSlash = VALIDATOR_MIN * MAX_FALSE_SLASH_BPS / BPS + 1; // above 10% of the minimum
        _expectAnnounceRevert(c, "falseAttestationSlash");
        // the limits themselves are accepted
        c = _defaultAuditConfig();
        c.validatorsPerAudit = 6;
        c.quorum = 4;
        c.commitWindow = MIN_COMMIT_WINDOW;
        c.revealWindow = MIN_REVEAL_WINDOW;
        c.finderShareBps = MAX_FINDER_SHARE_BPS;
        c.workerSlashAmount = WORKER_MIN * MAX_WORKER_SLASH_BPS / BPS;
        c.falseAttestationSlash = VALIDATOR_MIN * MAX_FALSE_SLASH_BPS / BPS;
        _setConfig(c);
        assertEq(grid.auditConfig().falseAttestationSlash, 1_000e18);
    }

    function _expectAnnounceRevert(IAudit.AuditConfig memory c, string memory reason) internal {
        vm.expectRevert(abi.encodeWithSelector(IAudit.InvalidAuditConfig.selector, reason));
        vm.prank(owner);
        grid.announceAuditConfig(c);
    }

    // ================================================================ governance: randomness source

    function test_randomnessSource_announcedThenApplied() public {
        FixedRandomness fixedSource = new FixedRandomness(keccak256("fixed"));
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, address(this)));
        grid.announceRandomnessSource(address(fixedSource));
        vm.startPrank(owner);
        vm.expectRevert(abi.encodeWithSelector(IAudit.InvalidAuditConfig.selector, "randomnessSource"));
        grid.announceRandomnessSource(address(0));
        vm.expectRevert(abi.encodeWithSelector(IAudit.InvalidAuditConfig.selector, "randomnessSource"));
        grid.announceRandomnessSource(makeAddr("eoa"));
        bytes32 id = grid.hashRandomnessSource(address(fixedSource));
        uint64 executableAt = uint64(block.timestamp) + CUT_DELAY;
        vm.expectEmit(address(grid));
        emit IAudit.RandomnessSourceAnnounced(id, address(fixedSource), executableAt, executableAt + CHANGE_WINDOW);
        assertEq(grid.announceRandomnessSource(address(fixedSource)), id);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotReady.selector, id, executableAt));
        grid.setRandomnessSource(address(fixedSource));
        address unannounced = address(new FixedRandomness(keccak256("other")));
        vm.warp(executableAt);
        vm.expectRevert(
            abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, grid.hashRandomnessSource(unannounced))
        );
        grid.setRandomnessSource(unannounced);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, address(this)));
        grid.setRandomnessSource(address(fixedSource));
        vm.expectEmit(address(grid));
        emit IAudit.RandomnessSourceSet(address(fixedSource));
        vm.prank(owner);
        grid.setRandomnessSource(address(fixedSource));
        assertEq(grid.randomnessSource(), address(fixedSource));
        uint256 batchId = _settle(_receipts(worker, 1));
        grid.fixRandomness(batchId); // ready at once: no delay for this source
        assertEq(grid.batchAudit(batchId).randomness, keccak256("fixed"));
    }

    function test_setRandomnessSource_revertsAfterTheWindow() public {
        address source = address(new FixedRandomness(keccak256("fixed")));
        vm.prank(owner);
        bytes32 id = grid.announceRandomnessSource(source);
        uint64 expiresAt = uint64(block.timestamp) + CUT_DELAY + CHANGE_WINDOW;
        vm.warp(uint256(expiresAt) + 1);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeExpired.selector, id, expiresAt));
        vm.prank(owner);
        grid.setRandomnessSource(source);
        assertEq(grid.randomnessSource(), address(randomness));
    }

    function test_setRandomnessSource_revertsWhenNotAnnounced() public {
        address source = address(new FixedRandomness(keccak256("fixed")));
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, grid.hashRandomnessSource(source)));
        vm.prank(owner);
        grid.setRandomnessSource(source);
    }

    // ================================================================ helpers

    /// @dev Announces `source` as the owner, waits the cut delay and applies it.
    function _setSource(address source) internal {
        vm.prank(owner);
        grid.announceRandomnessSource(source);
        vm.warp(block.timestamp + CUT_DELAY);
        vm.prank(owner);
        grid.setRandomnessSource(source);
    }

    /// @dev v1, v2, v3 commit `a`, `b`, `c` on `rs[index]` (None: that one stays silent), all reveal, the
    /// windows close.
    function _vote3(
        uint256 batchId,
        IAudit.Receipt[] memory rs,
        uint256 index,
        IAudit.Vote a,
        IAudit.Vote b,
        IAudit.Vote c
    ) internal {
        address[3] memory all = [v1, v2, v3];
        IAudit.Vote[3] memory allVotes = [a, b, c];
        address[] memory voters = new address[](3);
        IAudit.Vote[] memory votes = new IAudit.Vote[](3);
        uint256 n;
        for (uint256 i; i < 3; ++i) {
            if (allVotes[i] == IAudit.Vote.None) continue;
            voters[n] = all[i];
            votes[n++] = allVotes[i];
        }
        assembly ("memory-safe") {
            mstore(voters, n)
            mstore(votes, n)
        }
        _vote(batchId, rs, index, voters, votes);
    }

    function _assertSameList(address[] memory got, address[] memory expected) internal pure {
        assertEq(got.length, expected.length, "seat count");
        for (uint256 i; i < got.length; ++i) {
            assertEq(got[i], expected[i], "seat");
        }
    }

    function _has(address[] memory list, address who) internal pure returns (bool) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == who) return true;
        }
        return false;
    }

    function _indexOf(address[] memory list, address who) internal pure returns (uint256) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == who) return i;
        }
        revert("not in the list");
    }

    function _missing(address[] memory list, address[4] memory all) internal pure returns (address) {
        for (uint256 i; i < 4; ++i) {
            if (!_has(list, all[i])) return all[i];
        }
        revert("none missing");
    }

    /// @dev Independent re-implementation of LibAudit.draw's documented algorithm, for a validator set that
    /// only grew (so activeValidators() is in order of first bond) and did not change since settlement.
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

    /// @dev v1..v3 and five more, bonded a block before anything is settled.
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
        vm.roll(block.number + 1);
    }

    function _snapshot(VerdictCase memory k) internal view returns (Snapshot memory s) {
        s.stake = new uint256[](k.vs.length);
        s.earned = new uint256[](k.vs.length);
        for (uint256 i; i < k.vs.length; ++i) {
            s.stake[i] = _validatorStake(k.vs[i]);
            s.earned[i] = grid.earningsOf(k.vs[i]);
        }
        s.workerStake = _workerStake(worker);
        s.pool = grid.validatorPool();
        s.fees = grid.protocolFees();
        s.balance = aipg.balanceOf(address(grid));
        s.rewardLeft = grid.getBatch(k.batchId).rewardLeft;
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
