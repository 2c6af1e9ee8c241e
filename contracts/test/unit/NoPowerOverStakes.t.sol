// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {GridFixture} from "../utils/GridFixture.sol";
import {IGrid} from "../../src/interfaces/IGrid.sol";
import {IGridInit} from "../../src/interfaces/IGridInit.sol";
import {IDiamond} from "../../src/interfaces/IDiamond.sol";
import {IDiamondCut} from "../../src/interfaces/IDiamondCut.sol";
import {IDiamondLoupe} from "../../src/interfaces/IDiamondLoupe.sol";
import {ICutTimelock} from "../../src/interfaces/ICutTimelock.sol";
import {IERC173} from "../../src/interfaces/IERC173.sol";
import {IBonding} from "../../src/interfaces/IBonding.sol";
import {IModelRegistry} from "../../src/interfaces/IModelRegistry.sol";
import {IWorkerRegistry} from "../../src/interfaces/IWorkerRegistry.sol";
import {IPausable} from "../../src/interfaces/IPausable.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {LibDiamond} from "../../src/libraries/LibDiamond.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @notice A facet an attacker would like to route bonding or withdrawal selectors to. Added as a new
/// function, it runs in the diamond's context and sends the diamond's AIPG wherever it likes.
contract HostileFacet {
    function drain(address token, address to) external {
        IERC20(token).transfer(to, IERC20(token).balanceOf(address(this)));
    }
}

/// @notice A hostile `_init`: delegatecalled by the cut itself, it sends everything the diamond holds away.
contract HostileInit {
    function steal(address token, address to) external {
        IERC20(token).transfer(to, IERC20(token).balanceOf(address(this)));
    }
}

/// @notice Neither the owner nor anyone else can move, freeze or reduce a stake: the bonding selectors, the
/// cut itself and its timelock are immutable, every other upgrade waits out a delay longer than any exit,
/// pause never blocks an exit, and only a bond's owner can withdraw it.
contract NoPowerOverStakesTest is GridFixture {
    address internal worker = makeAddr("worker");
    address internal validator = makeAddr("validator");
    address internal payer = makeAddr("payer");
    address internal gateway = makeAddr("gateway");
    HostileFacet internal hostile;

    function setUp() public override {
        super.setUp();
        hostile = new HostileFacet();
        _bondWorker(worker, 2 * WORKER_MIN);
        _bondValidator(validator, 2 * VALIDATOR_MIN);
    }

    function _expectCutRevert(IDiamond.FacetCut[] memory cut, bytes memory err) internal {
        _announceCut(cut, address(0), "");
        vm.warp(block.timestamp + CUT_DELAY);
        vm.expectRevert(err);
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
    }

    function _assertBondsIntact() internal view {
        assertEq(grid.workerBond(worker).amount + grid.workerBond(worker).unbonding, 2 * WORKER_MIN);
        assertEq(
            grid.validatorBond(validator).amount + grid.validatorBond(validator).unbonding, 2 * VALIDATOR_MIN
        );
        assertEq(grid.totalWorkerBonded(), 2 * WORKER_MIN);
        assertEq(grid.totalValidatorBonded(), 2 * VALIDATOR_MIN);
    }

    // ---------------------------------------------------------------- immutable selectors

    function test_immutableSet_coversBondingCutAndExits() public view {
        bytes4[] memory s = diamondInit.immutableSelectors();
        bytes4[] memory w = _workerSelectors();
        bytes4[] memory v = _validatorSelectors();
        bytes4[] memory c = _cutSelectors();
        assertEq(s.length, w.length + v.length + c.length + 6);
        for (uint256 i; i < w.length; ++i) {
            assertTrue(_contains(s, w[i]));
        }
        for (uint256 i; i < v.length; ++i) {
            assertTrue(_contains(s, v[i]));
        }
        for (uint256 i; i < c.length; ++i) {
            assertTrue(_contains(s, c[i]));
        }
        assertTrue(_contains(s, IPayments.decreaseGatewayCap.selector));
        assertTrue(_contains(s, IPayments.withdrawDeposit.selector));
        assertTrue(_contains(s, IPayments.requestDepositWithdrawal.selector));
        assertTrue(_contains(s, IPayments.withdrawEarnings.selector));
        assertTrue(_contains(s, IPayments.depositOf.selector));
        assertTrue(_contains(s, IPayments.earningsOf.selector));
    }

    function test_replace_revertsForEveryImmutableSelector_evenAfterDelay() public {
        bytes4[] memory s = diamondInit.immutableSelectors();
        for (uint256 i; i < s.length; ++i) {
            _expectCutRevert(
                _singleCut(address(hostile), IDiamond.FacetCutAction.Replace, _one(s[i])),
                abi.encodeWithSelector(IGrid.ImmutableSelector.selector, s[i])
            );
        }
        _assertBondsIntact();
    }

    function test_remove_revertsForEveryImmutableSelector_evenAfterDelay() public {
        bytes4[] memory s = diamondInit.immutableSelectors();
        for (uint256 i; i < s.length; ++i) {
            _expectCutRevert(
                _singleCut(address(0), IDiamond.FacetCutAction.Remove, _one(s[i])),
                abi.encodeWithSelector(IGrid.ImmutableSelector.selector, s[i])
            );
        }
        _assertBondsIntact();
    }

    function test_replace_revertsForWholeBondingFacets() public {
        _expectCutRevert(
            _singleCut(address(hostile), IDiamond.FacetCutAction.Replace, _workerSelectors()),
            abi.encodeWithSelector(IGrid.ImmutableSelector.selector, _workerSelectors()[0])
        );
        _expectCutRevert(
            _singleCut(address(0), IDiamond.FacetCutAction.Remove, _validatorSelectors()),
            abi.encodeWithSelector(IGrid.ImmutableSelector.selector, _validatorSelectors()[0])
        );
    }

    function test_immutableSelector_hiddenInBatch_revertsWholeCut() public {
        IDiamond.FacetCut[] memory cut = new IDiamond.FacetCut[](2);
        cut[0] = _facetCut(address(0), IDiamond.FacetCutAction.Remove, _pauseSelectors()); // allowed on its own
        cut[1] = _facetCut(
            address(hostile),
            IDiamond.FacetCutAction.Replace,
            _one(IWorkerRegistry.withdrawWorkerBond.selector)
        );
        _expectCutRevert(
            cut,
            abi.encodeWithSelector(
                IGrid.ImmutableSelector.selector, IWorkerRegistry.withdrawWorkerBond.selector
            )
        );
        assertEq(grid.facetAddress(IPausable.pause.selector), address(pauseFacet));
        assertEq(grid.facetAddress(IWorkerRegistry.withdrawWorkerBond.selector), address(workerFacet));
    }

    function test_add_cannotShadowImmutableSelector() public {
        _expectCutRevert(
            _singleCut(address(hostile), IDiamond.FacetCutAction.Add, _one(IDiamondCut.diamondCut.selector)),
            abi.encodeWithSelector(
                IDiamondCut.CannotAddFunctionToDiamondThatAlreadyExists.selector,
                IDiamondCut.diamondCut.selector
            )
        );
    }

    // ---------------------------------------------------------------- timelock

    function test_diamondCut_revertsWhenNotAnnounced() public {
        IDiamond.FacetCut[] memory cut =
            _singleCut(address(hostile), IDiamond.FacetCutAction.Add, _one(HostileFacet.drain.selector));
        bytes32 h = grid.hashDiamondCut(cut, address(0), "");
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, h));
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
    }

    function test_diamondCut_revertsWhenTooEarly() public {
        IDiamond.FacetCut[] memory cut =
            _singleCut(address(hostile), IDiamond.FacetCutAction.Add, _one(HostileFacet.drain.selector));
        bytes32 h = _announceCut(cut, address(0), "");
        uint64 at = uint64(block.timestamp) + CUT_DELAY;
        vm.warp(at - 1);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotReady.selector, h, at));
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
    }

    function testFuzz_diamondCut_onlyOwner(address caller) public {
        vm.assume(caller != owner);
        IDiamond.FacetCut[] memory cut =
            _singleCut(address(hostile), IDiamond.FacetCutAction.Add, _one(HostileFacet.drain.selector));
        bytes32 h = grid.hashDiamondCut(cut, address(0), "");
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, caller));
        vm.prank(caller);
        grid.announceDiamondCut(cut, address(0), "");

        _announceCut(cut, address(0), "");
        vm.warp(block.timestamp + CUT_DELAY);
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, caller));
        vm.prank(caller);
        grid.diamondCut(cut, address(0), "");
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, caller));
        vm.prank(caller);
        grid.cancelChange(h);
    }

    /// @dev A payer with a deposit and a worker with earnings (a settled batch), besides the bonds of setUp.
    function _fundPayerAndEarnings() internal returns (uint256 earned) {
        _fund(payer, 600e18);
        vm.startPrank(payer);
        grid.deposit(600e18);
        grid.increaseGatewayCap(gateway, 100e18);
        vm.stopPrank();
        IPayments.PayerDebit[] memory debits = new IPayments.PayerDebit[](1);
        debits[0] = IPayments.PayerDebit({payer: payer, amount: 100e18});
        IPayments.WorkerCredit[] memory credits = new IPayments.WorkerCredit[](1);
        credits[0] = IPayments.WorkerCredit({worker: worker, gross: 100e18});
        vm.prank(gateway);
        grid.settle(keccak256("root"), 0, 1, debits, credits);
        earned = grid.earningsOf(worker);
    }

    /// @dev Everyone of setUp (and `_fundPayerAndEarnings`) asks to leave, waits out the longest exit delay and
    /// leaves, all before `executableAt`.
    function _everyoneExitsBefore(uint64 executableAt) internal {
        vm.prank(worker);
        grid.withdrawEarnings();
        vm.prank(worker);
        grid.requestWorkerUnbond(2 * WORKER_MIN);
        vm.prank(validator);
        grid.requestValidatorUnbond(2 * VALIDATOR_MIN);
        vm.prank(payer);
        grid.requestDepositWithdrawal(500e18);

        vm.warp(block.timestamp + (UNBOND_DELAY > DEPOSIT_DELAY ? UNBOND_DELAY : DEPOSIT_DELAY));
        assertLt(block.timestamp, executableAt, "the exits complete before the cut can run");
        vm.prank(worker);
        grid.withdrawWorkerBond();
        vm.prank(validator);
        grid.withdrawValidatorBond();
        vm.prank(payer);
        grid.withdrawDeposit();
    }

    /// An announced upgrade always leaves time to take everything out before it can run.
    function test_announcedCut_leavesTimeToExit() public {
        uint256 earned = _fundPayerAndEarnings();
        IDiamond.FacetCut[] memory cut =
            _singleCut(address(hostile), IDiamond.FacetCutAction.Add, _one(HostileFacet.drain.selector));
        bytes32 h = _announceCut(cut, address(0), "");
        (uint64 executableAt,) = grid.pendingChange(h);
        assertGe(executableAt - block.timestamp, UNBOND_DELAY + 60);
        assertGe(executableAt - block.timestamp, DEPOSIT_DELAY + 60);

        _everyoneExitsBefore(executableAt);

        assertEq(aipg.balanceOf(worker), 2 * WORKER_MIN + earned);
        assertEq(aipg.balanceOf(validator), 2 * VALIDATOR_MIN);
        assertEq(aipg.balanceOf(payer), 500e18);
        // only the validator pool and protocol fees of the batch are left (protocol fees go to the treasury)
        assertEq(aipg.balanceOf(address(grid)), grid.validatorPool() + grid.protocolFees());
    }

    /// A hostile facet announced and executed through the timelock after the delay: those who left during
    /// the delay kept everything; it can take only what stayed.
    function test_hostileFacet_afterDelay_takesNothingFromThoseWhoLeft() public {
        uint256 earned = _fundPayerAndEarnings();
        grid.withdrawProtocolFees();
        address stayer = makeAddr("stayer");
        _bondWorker(stayer, WORKER_MIN);
        address attacker = makeAddr("attacker");

        IDiamond.FacetCut[] memory cut =
            _singleCut(address(hostile), IDiamond.FacetCutAction.Add, _one(HostileFacet.drain.selector));
        bytes32 h = _announceCut(cut, address(0), "");
        (uint64 executableAt,) = grid.pendingChange(h);
        _everyoneExitsBefore(executableAt);

        vm.warp(executableAt);
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
        uint256 left = aipg.balanceOf(address(grid));
        HostileFacet(address(grid)).drain(address(aipg), attacker);

        assertEq(aipg.balanceOf(worker), 2 * WORKER_MIN + earned, "the worker kept bond and earnings");
        assertEq(aipg.balanceOf(validator), 2 * VALIDATOR_MIN, "the validator kept its bond");
        assertEq(aipg.balanceOf(payer), 500e18, "the payer kept its unspent deposit");
        assertEq(aipg.balanceOf(attacker), left);
        assertEq(left, WORKER_MIN + grid.validatorPool(), "only the stayer's bond and the pool were left");
    }

    /// The same with a hostile `_init` run by the cut itself.
    function test_hostileInit_afterDelay_takesNothingFromThoseWhoLeft() public {
        uint256 earned = _fundPayerAndEarnings();
        HostileInit bad = new HostileInit();
        address attacker = makeAddr("attacker");
        bytes memory data = abi.encodeCall(HostileInit.steal, (address(aipg), attacker));
        IDiamond.FacetCut[] memory none = new IDiamond.FacetCut[](0);

        // the announcement shows exactly what will run
        uint64 executableAt = uint64(block.timestamp) + CUT_DELAY;
        bytes32 h = grid.hashDiamondCut(none, address(bad), data);
        vm.expectEmit(true, true, true, true, address(grid));
        emit ICutTimelock.DiamondCutAnnounced(h, none, address(bad), data, executableAt, executableAt + CHANGE_WINDOW);
        _announceCut(none, address(bad), data);

        _everyoneExitsBefore(executableAt);
        vm.warp(executableAt);
        uint256 left = aipg.balanceOf(address(grid));
        vm.prank(owner);
        grid.diamondCut(none, address(bad), data);

        assertEq(aipg.balanceOf(worker), 2 * WORKER_MIN + earned);
        assertEq(aipg.balanceOf(validator), 2 * VALIDATOR_MIN);
        assertEq(aipg.balanceOf(payer), 500e18);
        assertEq(aipg.balanceOf(attacker), left);
        assertEq(left, grid.validatorPool() + grid.protocolFees());
    }

    /// A hostile cut that nobody executes in time lapses: it cannot be held back and sprung later.
    function test_hostileCut_lapsesAfterTheWindow() public {
        IDiamond.FacetCut[] memory cut =
            _singleCut(address(hostile), IDiamond.FacetCutAction.Add, _one(HostileFacet.drain.selector));
        bytes32 h = _announceCut(cut, address(0), "");
        (uint64 executableAt, uint64 expiresAt) = grid.pendingChange(h);
        assertEq(expiresAt, executableAt + CHANGE_WINDOW);
        vm.warp(expiresAt + 1);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeExpired.selector, h, expiresAt));
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
        _assertBondsIntact();
    }

    // ---------------------------------------------------------------- pause never blocks an exit

    function test_pause_doesNotBlockWorkerExit() public {
        vm.prank(owner);
        grid.pause();
        vm.prank(worker);
        grid.requestWorkerUnbond(2 * WORKER_MIN);
        vm.warp(block.timestamp + UNBOND_DELAY);
        vm.prank(worker);
        grid.withdrawWorkerBond();
        assertEq(aipg.balanceOf(worker), 2 * WORKER_MIN);
    }

    function test_pause_doesNotBlockValidatorExit() public {
        vm.prank(validator);
        grid.requestValidatorUnbond(VALIDATOR_MIN);
        vm.prank(owner);
        grid.pause();
        vm.warp(block.timestamp + UNBOND_DELAY);
        vm.prank(validator);
        grid.withdrawValidatorBond();
        assertEq(aipg.balanceOf(validator), VALIDATOR_MIN);
    }

    function test_pause_doesNotBlockWithdrawDeposit() public {
        _fund(payer, 300e18);
        vm.prank(payer);
        grid.deposit(300e18);
        vm.prank(owner);
        grid.pause();
        vm.prank(payer);
        grid.requestDepositWithdrawal(300e18);
        vm.warp(block.timestamp + DEPOSIT_DELAY);
        vm.prank(payer);
        grid.withdrawDeposit();
        assertEq(aipg.balanceOf(payer), 300e18);
    }

    function test_pause_doesNotBlockWithdrawEarnings() public {
        _fund(payer, 100e18);
        vm.startPrank(payer);
        grid.deposit(100e18);
        grid.increaseGatewayCap(gateway, 100e18);
        vm.stopPrank();
        IPayments.PayerDebit[] memory debits = new IPayments.PayerDebit[](1);
        debits[0] = IPayments.PayerDebit({payer: payer, amount: 100e18});
        IPayments.WorkerCredit[] memory credits = new IPayments.WorkerCredit[](1);
        credits[0] = IPayments.WorkerCredit({worker: worker, gross: 100e18});
        vm.prank(gateway);
        grid.settle(keccak256("root"), 0, 1, debits, credits);
        uint256 earned = grid.earningsOf(worker);
        assertEq(earned, 100e18 * uint256(WORKER_BPS) / 10_000);

        vm.prank(owner);
        grid.pause();
        vm.prank(worker);
        grid.withdrawEarnings();
        assertEq(aipg.balanceOf(worker), earned);
        assertEq(grid.earningsOf(worker), 0);
    }

    // ---------------------------------------------------------------- only the owner of a bond

    function testFuzz_withdrawWorkerBond_onlyOwner(address caller) public {
        vm.assume(caller != worker);
        vm.prank(worker);
        grid.requestWorkerUnbond(WORKER_MIN);
        vm.warp(block.timestamp + UNBOND_DELAY);
        uint256 before = aipg.balanceOf(caller);

        vm.expectRevert(abi.encodeWithSelector(IBonding.NothingUnbonding.selector, caller));
        vm.prank(caller);
        grid.withdrawWorkerBond();
        vm.expectRevert(abi.encodeWithSelector(IBonding.NothingUnbonding.selector, caller));
        vm.prank(caller);
        grid.cancelWorkerUnbond();
        vm.expectRevert(abi.encodeWithSelector(IBonding.NotBonded.selector, caller));
        vm.prank(caller);
        grid.requestWorkerUnbond(1);
        vm.expectRevert(abi.encodeWithSelector(IBonding.NotBonded.selector, caller));
        vm.prank(caller);
        grid.setWorkerOperator(caller);

        assertEq(aipg.balanceOf(caller), before);
        _assertBondsIntact();
        assertEq(grid.workerBond(worker).operator, worker);
        vm.prank(worker);
        grid.withdrawWorkerBond();
        assertEq(aipg.balanceOf(worker), WORKER_MIN);
    }

    function testFuzz_withdrawValidatorBond_onlyOwner(address caller) public {
        vm.assume(caller != validator);
        vm.prank(validator);
        grid.requestValidatorUnbond(2 * VALIDATOR_MIN);
        vm.warp(block.timestamp + UNBOND_DELAY);

        vm.expectRevert(abi.encodeWithSelector(IBonding.NothingUnbonding.selector, caller));
        vm.prank(caller);
        grid.withdrawValidatorBond();
        vm.expectRevert(abi.encodeWithSelector(IBonding.NothingUnbonding.selector, caller));
        vm.prank(caller);
        grid.cancelValidatorUnbond();

        _assertBondsIntact();
        vm.prank(validator);
        grid.withdrawValidatorBond();
        assertEq(aipg.balanceOf(validator), 2 * VALIDATOR_MIN);
    }

    /// Every owner-only action leaves bonds untouched and withdrawable.
    function test_ownerPowers_cannotTouchBonds() public {
        vm.startPrank(owner);
        grid.pause();
        grid.registerModel(
            "m",
            IModelRegistry.ModelKind.Text,
            bytes32(uint256(1)),
            bytes32(uint256(2)),
            1,
            1,
            IModelRegistry.RateCard({inputPerMTokens: 1, outputPerMTokens: 1, perMegapixelStep: 0})
        );
        grid.setConfidentialPremium(10_000);
        grid.transferOwnership(makeAddr("next"));
        vm.stopPrank();
        _assertBondsIntact();
        assertTrue(grid.isActiveWorker(worker));
        assertTrue(grid.isActiveValidator(validator));

        vm.prank(worker);
        grid.requestWorkerUnbond(2 * WORKER_MIN);
        vm.warp(block.timestamp + UNBOND_DELAY);
        vm.prank(worker);
        grid.withdrawWorkerBond();
        assertEq(aipg.balanceOf(worker), 2 * WORKER_MIN);
    }

    /// The diamond exposes exactly the IGrid functions: no hidden slash, sweep or admin-withdraw entry point.
    function test_loupe_exposesOnlyTheKnownApi() public view {
        bytes4[][9] memory groups = [
            _cutSelectors(),
            _loupeSelectors(),
            _ownershipSelectors(),
            _pauseSelectors(),
            _workerSelectors(),
            _validatorSelectors(),
            _modelSelectors(),
            _paymentsSelectors(),
            _auditSelectors()
        ];
        uint256 expected;
        for (uint256 g; g < groups.length; ++g) {
            expected += groups[g].length;
        }
        IDiamondLoupe.Facet[] memory f = grid.facets();
        uint256 found;
        for (uint256 i; i < f.length; ++i) {
            for (uint256 j; j < f[i].functionSelectors.length; ++j) {
                bool known;
                for (uint256 g; g < groups.length && !known; ++g) {
                    known = _contains(groups[g], f[i].functionSelectors[j]);
                }
                assertTrue(known, "unexpected selector");
                ++found;
            }
        }
        assertEq(found, expected);
        assertEq(found, 100);
    }

    // ---------------------------------------------------------------- ownership and init

    function testFuzz_ownership_cannotBeHijacked(address attacker) public {
        vm.assume(attacker != owner);
        address next = makeAddr("next");
        vm.assume(attacker != next);

        vm.expectRevert(abi.encodeWithSelector(IERC173.NotPendingOwner.selector, attacker));
        vm.prank(attacker);
        grid.acceptOwnership();
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, attacker));
        vm.prank(attacker);
        grid.transferOwnership(attacker);

        vm.prank(owner);
        grid.transferOwnership(next);
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotPendingOwner.selector, attacker));
        vm.prank(attacker);
        grid.acceptOwnership();
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, attacker));
        vm.prank(attacker);
        grid.transferOwnership(attacker);

        assertEq(grid.owner(), owner);
        assertEq(grid.pendingOwner(), next);
    }

    function test_secondInit_reverts() public {
        IGridInit.InitArgs memory args = _defaultInitArgs();
        args.workerMinimumBond = 1; // what an attacker would like
        bytes memory data = abi.encodeCall(IGridInit.init, (args));
        IDiamond.FacetCut[] memory none = new IDiamond.FacetCut[](0);
        _announceCut(none, address(diamondInit), data);
        vm.warp(block.timestamp + CUT_DELAY);
        vm.expectRevert(abi.encodeWithSelector(IGridInit.InvalidInit.selector, "already initialized"));
        vm.prank(owner);
        grid.diamondCut(none, address(diamondInit), data);
        assertEq(grid.workerMinimumBond(), WORKER_MIN);
    }

    function _contains(bytes4[] memory set, bytes4 s) internal pure returns (bool) {
        for (uint256 i; i < set.length; ++i) {
            if (set[i] == s) return true;
        }
        return false;
    }
}
