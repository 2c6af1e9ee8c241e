// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IGrid} from "../../src/interfaces/IGrid.sol";
import {IGridInit} from "../../src/interfaces/IGridInit.sol";
import {IDiamond} from "../../src/interfaces/IDiamond.sol";
import {ICutTimelock} from "../../src/interfaces/ICutTimelock.sol";
import {IERC173} from "../../src/interfaces/IERC173.sol";
import {IWorkerRegistry} from "../../src/interfaces/IWorkerRegistry.sol";
import {SecurityFixture} from "./SecurityFixture.sol";

/// @notice An `_init` that empties the diamond into `to`.
contract DrainAllInit {
    function drain(address token, address to) external {
        IERC20(token).transfer(to, IERC20(token).balanceOf(address(this)));
    }
}

/// @notice A facet whose one function sends the diamond's AIPG to whoever calls it.
contract StealFacet {
    function steal(address token) external {
        IERC20(token).transfer(msg.sender, IERC20(token).balanceOf(address(this)));
    }
}

/// @notice Threat model of contracts/README.md, attack 5, by the owner and by a facet or `_init` added
/// through an announced cut: an announcement publishes the whole cut, runs only within `changeWindow` after
/// it matures and then lapses, and DiamondInit demands a cut delay that exceeds every exit delay by the
/// network's reaction margin, so whoever reads a hostile announcement leaves with everything before it can
/// run.
contract CutAnnouncementsTest is SecurityFixture {
    DrainAllInit internal drainInit;
    StealFacet internal stealFacet;

    function setUp() public override {
        super.setUp();
        drainInit = new DrainAllInit();
        stealFacet = new StealFacet();
    }

    function _hostileCut()
        internal
        view
        returns (IDiamond.FacetCut[] memory cut, address init, bytes memory data)
    {
        cut = _singleCut(address(stealFacet), IDiamond.FacetCutAction.Add, _one(StealFacet.steal.selector));
        init = address(drainInit);
        data = abi.encodeCall(DrainAllInit.drain, (address(aipg), attacker));
    }

    // ---------------------------------------------------------------- content and window

    /// The event carries every facet, selector, the init address and calldata, and both window ends.
    function test_announcement_publishesTheWholeCut() public {
        (IDiamond.FacetCut[] memory cut, address init, bytes memory data) = _hostileCut();
        vm.recordLogs();
        bytes32 h = _announceCut(cut, init, data);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1);
        assertEq(logs[0].topics[0], ICutTimelock.DiamondCutAnnounced.selector);
        assertEq(logs[0].topics[1], h);
        (bytes32 content, uint64 executableAt, uint64 expiresAt) = this.decodeAnnouncement(logs[0].data);
        assertEq(content, keccak256(abi.encode(cut, init, data)));
        assertEq(h, keccak256(abi.encode(cut, init, data)));
        assertEq(executableAt, block.timestamp + CUT_DELAY);
        assertEq(expiresAt, block.timestamp + CUT_DELAY + CHANGE_WINDOW);
        (uint64 pe, uint64 px) = grid.pendingChange(h);
        assertEq(pe, executableAt);
        assertEq(px, expiresAt);
    }

    /// @dev Hash of the (cut, init, calldata) an announcement's data carries, and its window.
    function decodeAnnouncement(bytes calldata logData) external pure returns (bytes32, uint64, uint64) {
        (IDiamond.FacetCut[] memory c, address i, bytes memory d, uint64 executableAt, uint64 expiresAt) =
            abi.decode(logData, (IDiamond.FacetCut[], address, bytes, uint64, uint64));
        return (keccak256(abi.encode(c, i, d)), executableAt, expiresAt);
    }

    /// Before maturity: ChangeNotReady; within [executableAt, executableAt + changeWindow]: runs once;
    /// after: ChangeExpired. Fuzzed over the moment of the attempt.
    function testFuzz_cut_runsOnlyWithinItsWindow(uint8 region, uint64 offset) public {
        (IDiamond.FacetCut[] memory cut, address init, bytes memory data) = _hostileCut();
        bytes32 h = _announceCut(cut, init, data);
        (uint64 executableAt, uint64 expiresAt) = grid.pendingChange(h);
        region = region % 3;
        uint64 at = region == 0
            ? uint64(bound(offset, block.timestamp, executableAt - 1))
            : region == 1
                ? uint64(bound(offset, executableAt, expiresAt))
                : uint64(bound(offset, uint256(expiresAt) + 1, uint256(expiresAt) + 3650 days));
        vm.warp(at);
        if (at < executableAt) {
            vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotReady.selector, h, executableAt));
        } else if (at > expiresAt) {
            vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeExpired.selector, h, expiresAt));
        }
        vm.prank(owner);
        grid.diamondCut(cut, init, data);
        if (at >= executableAt && at <= expiresAt) {
            // consumed: it cannot run a second time
            vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, h));
            vm.prank(owner);
            grid.diamondCut(cut, init, data);
        }
    }

    /// Announced once, left to mature, fired a year later against someone who joined after it matured:
    /// lapsed. Announcing it again restarts the full delay, which the newcomer uses to leave.
    function test_hostileCutAnnouncedLongAgo_cannotFireAYearLater() public {
        (IDiamond.FacetCut[] memory cut, address init, bytes memory data) = _hostileCut();
        bytes32 h = _announceCut(cut, init, data);
        (, uint64 expiresAt) = grid.pendingChange(h);
        vm.warp(block.timestamp + 200 days);
        address newcomer = makeAddr("newcomer");
        _bondWorker(newcomer, WORKER_MIN);
        vm.warp(block.timestamp + 165 days);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeExpired.selector, h, expiresAt));
        vm.prank(owner);
        grid.diamondCut(cut, init, data);

        _announceCut(cut, init, data);
        vm.prank(newcomer);
        grid.requestWorkerUnbond(WORKER_MIN);
        vm.warp(block.timestamp + UNBOND_DELAY);
        vm.prank(newcomer);
        grid.withdrawWorkerBond();
        assertEq(aipg.balanceOf(newcomer), WORKER_MIN);
    }

    /// Nobody but the owner announces, cuts or cancels; a cancelled announcement cannot run.
    function testFuzz_cut_onlyOwnerAnnouncesCutsOrCancels(address caller) public {
        vm.assume(caller != owner);
        (IDiamond.FacetCut[] memory cut, address init, bytes memory data) = _hostileCut();
        bytes memory notOwner = abi.encodeWithSelector(IERC173.NotOwner.selector, caller);
        vm.expectRevert(notOwner);
        vm.prank(caller);
        grid.announceDiamondCut(cut, init, data);
        bytes32 h = _announceCut(cut, init, data);
        vm.warp(block.timestamp + CUT_DELAY);
        vm.expectRevert(notOwner);
        vm.prank(caller);
        grid.diamondCut(cut, init, data);
        vm.expectRevert(notOwner);
        vm.prank(caller);
        grid.cancelChange(h);
        vm.prank(owner);
        grid.cancelChange(h);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, h));
        vm.prank(owner);
        grid.diamondCut(cut, init, data);
    }

    // ---------------------------------------------------------------- reaction margin at deployment

    /// On Base (8453, 84532) the cut delay must exceed both exit delays by two days, elsewhere by 60 s;
    /// one second less is refused. Fuzzed over the exit delays.
    function testFuzz_diamondInit_demandsTheReactionMargin(uint64 unbond, uint64 deposit, uint8 chain) public {
        uint256[3] memory chains = [uint256(8453), 84532, 31337];
        uint256 chainId = chains[chain % 3];
        vm.chainId(chainId);
        uint64 margin = chainId == 31337 ? 60 : 2 days;
        unbond = uint64(bound(unbond, 1, 60 days));
        deposit = uint64(bound(deposit, 1, 60 days));
        uint64 longest = unbond > deposit ? unbond : deposit;
        IGridInit.InitArgs memory args = _defaultInitArgs();
        args.unbondDelay = unbond;
        args.depositWithdrawDelay = deposit;
        args.cutDelay = longest + margin - 1;
        args.changeWindow = 1;
        _expectInitRevert(args, "cutDelay");

        args.cutDelay = longest + margin;
        IGrid g = _deployGrid(args);
        assertEq(g.cutDelay(), longest + margin);
        assertEq(diamondInit.reactionMargin(), margin);
    }

    /// The window is bounded: neither zero nor longer than the delay.
    function testFuzz_diamondInit_boundsTheChangeWindow(uint64 window) public {
        IGridInit.InitArgs memory args = _defaultInitArgs();
        args.changeWindow = window == 0 ? 0 : uint64(bound(window, CUT_DELAY + 1, type(uint64).max));
        _expectInitRevert(args, "changeWindow");
    }

    // ---------------------------------------------------------------- a hostile facet or _init, announced

    /// The owner announces a cut that adds a steal() facet and runs a draining `_init`. Everyone who reacts
    /// at any moment (fuzzed) up to executableAt - max(exit delay) is out with everything before it can run;
    /// when it runs it finds nothing of theirs. A hostile cut also cannot replace a bonding selector.
    function testFuzz_hostileFacetAndInit_everyoneReactingLeavesFirst(uint64 reactAfter) public {
        _settle(_receipts(worker, 2)); // earnings, pools
        reactAfter = uint64(bound(reactAfter, 0, CUT_DELAY - UNBOND_DELAY - 1));
        (IDiamond.FacetCut[] memory cut, address init, bytes memory data) = _hostileCut();
        bytes32 h = _announceCut(cut, init, data);
        (uint64 executableAt,) = grid.pendingChange(h);

        vm.warp(block.timestamp + reactAfter);
        uint256 earned = grid.earningsOf(worker);
        uint256 deposit = grid.depositOf(payer).balance;
        vm.prank(worker);
        grid.withdrawEarnings();
        vm.prank(worker);
        grid.requestWorkerUnbond(WORKER_BOND);
        vm.prank(v1);
        grid.requestValidatorUnbond(VALIDATOR_MIN);
        vm.prank(payer);
        grid.requestDepositWithdrawal(deposit);
        vm.warp(block.timestamp + UNBOND_DELAY);
        assertLt(block.timestamp, executableAt);
        vm.prank(worker);
        grid.withdrawWorkerBond();
        vm.prank(v1);
        grid.withdrawValidatorBond();
        vm.prank(payer);
        grid.withdrawDeposit();

        vm.warp(executableAt);
        vm.prank(owner);
        grid.diamondCut(cut, init, data);
        assertEq(aipg.balanceOf(worker), WORKER_BOND + earned);
        assertEq(aipg.balanceOf(v1), VALIDATOR_MIN);
        assertEq(aipg.balanceOf(payer), deposit);

        // even through an announced cut, a bonding exit cannot be replaced
        IDiamond.FacetCut[] memory replace = _singleCut(
            address(stealFacet), IDiamond.FacetCutAction.Replace, _one(IWorkerRegistry.withdrawWorkerBond.selector)
        );
        _announceCut(replace, address(0), "");
        vm.warp(block.timestamp + CUT_DELAY);
        vm.expectRevert(abi.encodeWithSelector(IGrid.ImmutableSelector.selector, IWorkerRegistry.withdrawWorkerBond.selector));
        vm.prank(owner);
        grid.diamondCut(replace, address(0), "");
    }
}
