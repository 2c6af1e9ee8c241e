// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IDiamondCut} from "../../src/interfaces/IDiamondCut.sol";

import {Vm} from "forge-std/Vm.sol";
import {GridFixture} from "../utils/GridFixture.sol";
import {IDiamond} from "../../src/interfaces/IDiamond.sol";
import {ICutTimelock} from "../../src/interfaces/ICutTimelock.sol";
import {IERC173} from "../../src/interfaces/IERC173.sol";
import {IPausable} from "../../src/interfaces/IPausable.sol";
import {LibDiamond} from "../../src/libraries/LibDiamond.sol";

contract ExtraFacet {
    function extraA() external pure returns (uint256) {
        return 1;
    }

    function extraB() external pure returns (uint256) {
        return 2;
    }
}

contract ExtraFacetV2 {
    function extraA() external pure returns (uint256) {
        return 10;
    }
}

contract CutInit {
    event CutInitRan(uint256 value);

    function ok(uint256 value) external {
        emit CutInitRan(value);
    }

    function failsWithMessage() external pure {
        revert("init failed");
    }

    function failsEmpty() external pure {
        revert();
    }
}

/// @notice diamondCut (diamond-3 rules) and its announce-then-wait timelock.
contract DiamondCutFacetTest is GridFixture {
    ExtraFacet internal extra;
    CutInit internal cutInit;
    address internal stranger = makeAddr("stranger");

    function setUp() public override {
        super.setUp();
        extra = new ExtraFacet();
        cutInit = new CutInit();
    }

    function _extraSelectors() internal pure returns (bytes4[] memory s) {
        s = new bytes4[](2);
        s[0] = ExtraFacet.extraA.selector;
        s[1] = ExtraFacet.extraB.selector;
    }

    function _addExtra() internal {
        _executeCut(
            _singleCut(address(extra), IDiamond.FacetCutAction.Add, _extraSelectors()), address(0), ""
        );
    }

    /// @dev Announces, waits, then expects `err` from executing `cut`.
    function _expectCutRevert(
        IDiamond.FacetCut[] memory cut,
        address init,
        bytes memory data,
        bytes memory err
    ) internal {
        _announceCut(cut, init, data);
        vm.warp(block.timestamp + CUT_DELAY);
        vm.expectRevert(err);
        vm.prank(owner);
        grid.diamondCut(cut, init, data);
    }

    // ---------------------------------------------------------------- timelock

    function test_hashDiamondCut_matchesAbiEncode() public view {
        IDiamond.FacetCut[] memory cut =
            _singleCut(address(extra), IDiamond.FacetCutAction.Add, _extraSelectors());
        bytes memory data = abi.encodeCall(CutInit.ok, (7));
        assertEq(
            grid.hashDiamondCut(cut, address(cutInit), data),
            keccak256(abi.encode(cut, address(cutInit), data))
        );
    }

    function _extraCut() internal view returns (IDiamond.FacetCut[] memory) {
        return _singleCut(address(extra), IDiamond.FacetCutAction.Add, _extraSelectors());
    }

    function test_announceDiamondCut_emitsFullContentAndSchedules() public {
        IDiamond.FacetCut[] memory cut = _extraCut();
        bytes memory data = abi.encodeCall(CutInit.ok, (7));
        bytes32 h = grid.hashDiamondCut(cut, address(cutInit), data);
        uint64 at = uint64(block.timestamp) + CUT_DELAY;
        // every topic and the whole data: the facets, the selectors, the init address and its calldata
        vm.expectEmit(true, true, true, true, address(grid));
        emit ICutTimelock.DiamondCutAnnounced(h, cut, address(cutInit), data, at, at + CHANGE_WINDOW);
        vm.prank(owner);
        bytes32 returned = grid.announceDiamondCut(cut, address(cutInit), data);
        assertEq(returned, h);
        (uint64 executableAt, uint64 expiresAt) = grid.pendingChange(h);
        assertEq(executableAt, at);
        assertEq(expiresAt, at + CHANGE_WINDOW);
    }

    function test_announceDiamondCut_eventDecodesToTheExactCut() public {
        IDiamond.FacetCut[] memory cut = _extraCut();
        bytes memory data = abi.encodeCall(CutInit.ok, (99));
        vm.recordLogs();
        _announceCut(cut, address(cutInit), data);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1);
        assertEq(logs[0].topics[0], ICutTimelock.DiamondCutAnnounced.selector);
        (IDiamond.FacetCut[] memory c, address init, bytes memory d,,) =
            abi.decode(logs[0].data, (IDiamond.FacetCut[], address, bytes, uint64, uint64));
        // anyone watching the event can tell what will run, and its hash is the one that will be executed
        assertEq(keccak256(abi.encode(c, init, d)), logs[0].topics[1]);
        assertEq(c[0].facetAddress, address(extra));
        assertEq(c[0].functionSelectors.length, 2);
        assertEq(init, address(cutInit));
        assertEq(d, data);
    }

    function test_pendingChange_isZeroWhenNotAnnounced() public view {
        (uint64 executableAt, uint64 expiresAt) = grid.pendingChange(keccak256("cut"));
        assertEq(executableAt, 0);
        assertEq(expiresAt, 0);
    }

    function test_views_reportDelayAndWindow() public view {
        assertEq(grid.cutDelay(), CUT_DELAY);
        assertEq(grid.changeWindow(), CHANGE_WINDOW);
    }

    function test_announceDiamondCut_againRestartsDelay() public {
        IDiamond.FacetCut[] memory cut = _extraCut();
        bytes32 h = _announceCut(cut, address(0), "");
        vm.warp(block.timestamp + 1 days);
        _announceCut(cut, address(0), "");
        uint64 at = uint64(block.timestamp) + CUT_DELAY;
        (uint64 executableAt, uint64 expiresAt) = grid.pendingChange(h);
        assertEq(executableAt, at);
        assertEq(expiresAt, at + CHANGE_WINDOW);
        // the first announcement's maturity no longer counts
        vm.warp(at - 1);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotReady.selector, h, at));
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
    }

    function test_announceDiamondCut_againAfterExpiryRestarts() public {
        IDiamond.FacetCut[] memory cut = _extraCut();
        bytes32 h = _announceCut(cut, address(0), "");
        vm.warp(block.timestamp + CUT_DELAY + CHANGE_WINDOW + 1);
        _announceCut(cut, address(0), "");
        vm.warp(block.timestamp + CUT_DELAY);
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
        assertEq(grid.facetAddress(ExtraFacet.extraA.selector), address(extra));
        (uint64 executableAt,) = grid.pendingChange(h);
        assertEq(executableAt, 0);
    }

    function test_announceDiamondCut_revertsWhenNotOwner() public {
        IDiamond.FacetCut[] memory cut = _extraCut();
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, stranger));
        vm.prank(stranger);
        grid.announceDiamondCut(cut, address(0), "");
    }

    function test_cancelChange_clearsAnnouncement() public {
        IDiamond.FacetCut[] memory cut = _extraCut();
        bytes32 h = _announceCut(cut, address(0), "");
        vm.expectEmit(address(grid));
        emit ICutTimelock.ChangeCancelled(h);
        vm.prank(owner);
        grid.cancelChange(h);
        (uint64 executableAt, uint64 expiresAt) = grid.pendingChange(h);
        assertEq(executableAt, 0);
        assertEq(expiresAt, 0);
    }

    function test_cancelChange_revertsWhenNotAnnounced() public {
        bytes32 h = keccak256("cut");
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, h));
        vm.prank(owner);
        grid.cancelChange(h);
    }

    function test_cancelChange_revertsWhenNotOwner() public {
        bytes32 h = _announceCut(_extraCut(), address(0), "");
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, stranger));
        vm.prank(stranger);
        grid.cancelChange(h);
    }

    function test_diamondCut_afterDelay_addsFacetAndConsumesAnnouncement() public {
        IDiamond.FacetCut[] memory cut =
            _singleCut(address(extra), IDiamond.FacetCutAction.Add, _extraSelectors());
        bytes32 h = _announceCut(cut, address(0), "");
        vm.warp(block.timestamp + CUT_DELAY);
        vm.expectEmit(address(grid));
        emit IDiamond.DiamondCut(cut, address(0), "");
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");

        assertEq(ExtraFacet(address(grid)).extraA(), 1);
        assertEq(ExtraFacet(address(grid)).extraB(), 2);
        assertEq(grid.facetAddress(ExtraFacet.extraA.selector), address(extra));
        assertEq(grid.facetAddresses().length, 10);
        (uint64 executableAt,) = grid.pendingChange(h);
        assertEq(executableAt, 0);

        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, h));
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
    }

    function test_diamondCut_revertsWhenNotAnnounced() public {
        IDiamond.FacetCut[] memory cut =
            _singleCut(address(extra), IDiamond.FacetCutAction.Add, _extraSelectors());
        bytes32 h = grid.hashDiamondCut(cut, address(0), "");
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, h));
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
    }

    function test_diamondCut_revertsWhenTooEarly() public {
        IDiamond.FacetCut[] memory cut =
            _singleCut(address(extra), IDiamond.FacetCutAction.Add, _extraSelectors());
        bytes32 h = _announceCut(cut, address(0), "");
        uint64 at = uint64(block.timestamp) + CUT_DELAY;
        vm.warp(at - 1);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotReady.selector, h, at));
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
    }

    function test_diamondCut_revertsWhenArgumentsDifferFromAnnouncement() public {
        IDiamond.FacetCut[] memory cut =
            _singleCut(address(extra), IDiamond.FacetCutAction.Add, _extraSelectors());
        _announceCut(cut, address(0), "");
        vm.warp(block.timestamp + CUT_DELAY);
        bytes memory data = abi.encodeCall(CutInit.ok, (1));
        bytes32 other = grid.hashDiamondCut(cut, address(cutInit), data);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, other));
        vm.prank(owner);
        grid.diamondCut(cut, address(cutInit), data);
    }

    function test_diamondCut_revertsWhenCancelled() public {
        IDiamond.FacetCut[] memory cut =
            _singleCut(address(extra), IDiamond.FacetCutAction.Add, _extraSelectors());
        bytes32 h = _announceCut(cut, address(0), "");
        vm.prank(owner);
        grid.cancelChange(h);
        vm.warp(block.timestamp + CUT_DELAY);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotAnnounced.selector, h));
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
    }

    function test_diamondCut_revertsWhenNotOwner() public {
        IDiamond.FacetCut[] memory cut =
            _singleCut(address(extra), IDiamond.FacetCutAction.Add, _extraSelectors());
        _announceCut(cut, address(0), "");
        vm.warp(block.timestamp + CUT_DELAY);
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, stranger));
        vm.prank(stranger);
        grid.diamondCut(cut, address(0), "");
    }

    /// @dev A cut runs only within [executableAt, executableAt + changeWindow].
    function testFuzz_diamondCut_runsOnlyWithinTheWindow(uint256 wait) public {
        wait = bound(wait, 0, 3 * uint256(CUT_DELAY) + CHANGE_WINDOW);
        IDiamond.FacetCut[] memory cut = _extraCut();
        bytes32 h = _announceCut(cut, address(0), "");
        uint64 at = uint64(block.timestamp) + CUT_DELAY;
        vm.warp(block.timestamp + wait);
        bool runs = wait >= CUT_DELAY && wait <= uint256(CUT_DELAY) + CHANGE_WINDOW;
        if (wait < CUT_DELAY) {
            vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotReady.selector, h, at));
        } else if (!runs) {
            vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeExpired.selector, h, at + CHANGE_WINDOW));
        }
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
        assertEq(grid.facetAddress(ExtraFacet.extraA.selector), runs ? address(extra) : address(0));
    }

    function test_diamondCut_runsAtTheLastSecondOfTheWindow() public {
        IDiamond.FacetCut[] memory cut = _extraCut();
        _announceCut(cut, address(0), "");
        vm.warp(block.timestamp + CUT_DELAY + CHANGE_WINDOW);
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
        assertEq(ExtraFacet(address(grid)).extraA(), 1);
    }

    function test_diamondCut_revertsWhenExpired() public {
        IDiamond.FacetCut[] memory cut = _extraCut();
        bytes32 h = _announceCut(cut, address(0), "");
        uint64 expiresAt = uint64(block.timestamp) + CUT_DELAY + CHANGE_WINDOW;
        vm.warp(expiresAt + 1);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeExpired.selector, h, expiresAt));
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
        // a lapsed announcement stays visible until cancelled or re-announced
        (uint64 executableAt,) = grid.pendingChange(h);
        assertEq(executableAt, expiresAt - CHANGE_WINDOW);
    }

    // ---------------------------------------------------------------- init delegatecall

    function test_diamondCut_runsInit() public {
        bytes memory data = abi.encodeCall(CutInit.ok, (42));
        IDiamond.FacetCut[] memory cut = new IDiamond.FacetCut[](0);
        _announceCut(cut, address(cutInit), data);
        vm.warp(block.timestamp + CUT_DELAY);
        vm.expectEmit(address(grid));
        emit CutInit.CutInitRan(42);
        vm.prank(owner);
        grid.diamondCut(cut, address(cutInit), data);
    }

    function test_diamondCut_bubblesInitRevert() public {
        bytes memory data = abi.encodeCall(CutInit.failsWithMessage, ());
        _expectCutRevert(new IDiamond.FacetCut[](0), address(cutInit), data, bytes("init failed"));
    }

    function test_diamondCut_revertsWhenInitRevertsEmpty() public {
        bytes memory data = abi.encodeCall(CutInit.failsEmpty, ());
        _expectCutRevert(
            new IDiamond.FacetCut[](0),
            address(cutInit),
            data,
            abi.encodeWithSelector(
                IDiamondCut.InitializationFunctionReverted.selector, address(cutInit), data
            )
        );
    }

    function test_diamondCut_revertsWhenInitHasNoCode() public {
        address noCode = makeAddr("noCode");
        _expectCutRevert(
            new IDiamond.FacetCut[](0),
            noCode,
            "",
            abi.encodeWithSelector(
                IDiamondCut.NoBytecodeAtAddress.selector, noCode, "LibDiamond: _init address has no code"
            )
        );
    }

    // ---------------------------------------------------------------- add / replace / remove rules

    function test_add_revertsWhenNoSelectors() public {
        _expectCutRevert(
            _singleCut(address(extra), IDiamond.FacetCutAction.Add, new bytes4[](0)),
            address(0),
            "",
            abi.encodeWithSelector(IDiamondCut.NoSelectorsProvidedForFacetForCut.selector, address(extra))
        );
    }

    function test_add_revertsWhenFacetZero() public {
        bytes4[] memory s = _extraSelectors();
        _expectCutRevert(
            _singleCut(address(0), IDiamond.FacetCutAction.Add, s),
            address(0),
            "",
            abi.encodeWithSelector(IDiamondCut.CannotAddSelectorsToZeroAddress.selector, s)
        );
    }

    function test_add_revertsWhenFacetHasNoCode() public {
        address noCode = makeAddr("noCode");
        _expectCutRevert(
            _singleCut(noCode, IDiamond.FacetCutAction.Add, _extraSelectors()),
            address(0),
            "",
            abi.encodeWithSelector(
                IDiamondCut.NoBytecodeAtAddress.selector, noCode, "LibDiamond: new facet has no code"
            )
        );
    }

    function test_add_revertsWhenSelectorExists() public {
        _expectCutRevert(
            _singleCut(address(extra), IDiamond.FacetCutAction.Add, _one(IPausable.pause.selector)),
            address(0),
            "",
            abi.encodeWithSelector(
                IDiamondCut.CannotAddFunctionToDiamondThatAlreadyExists.selector, IPausable.pause.selector
            )
        );
    }

    function test_replace_mutableSelector_routesToNewFacet() public {
        _addExtra();
        ExtraFacetV2 v2 = new ExtraFacetV2();
        _executeCut(
            _singleCut(address(v2), IDiamond.FacetCutAction.Replace, _one(ExtraFacet.extraA.selector)),
            address(0),
            ""
        );
        assertEq(ExtraFacet(address(grid)).extraA(), 10);
        assertEq(ExtraFacet(address(grid)).extraB(), 2);
        assertEq(grid.facetFunctionSelectors(address(extra)).length, 1);
        assertEq(grid.facetFunctionSelectors(address(v2)).length, 1);
    }

    function test_replace_lastSelector_dropsOldFacet() public {
        _addExtra();
        ExtraFacet extra2 = new ExtraFacet();
        _executeCut(
            _singleCut(address(extra2), IDiamond.FacetCutAction.Replace, _extraSelectors()), address(0), ""
        );
        assertEq(grid.facetFunctionSelectors(address(extra)).length, 0);
        assertEq(grid.facetAddresses().length, 10);
        assertEq(grid.facetAddress(ExtraFacet.extraB.selector), address(extra2));
    }

    function test_replace_revertsWhenFacetZero() public {
        bytes4[] memory s = _one(IPausable.pause.selector);
        _expectCutRevert(
            _singleCut(address(0), IDiamond.FacetCutAction.Replace, s),
            address(0),
            "",
            abi.encodeWithSelector(IDiamondCut.CannotReplaceFunctionsFromFacetWithZeroAddress.selector, s)
        );
    }

    function test_replace_revertsWhenSameFacet() public {
        _expectCutRevert(
            _singleCut(address(pauseFacet), IDiamond.FacetCutAction.Replace, _one(IPausable.pause.selector)),
            address(0),
            "",
            abi.encodeWithSelector(
                IDiamondCut.CannotReplaceFunctionWithTheSameFunctionFromTheSameFacet.selector,
                IPausable.pause.selector
            )
        );
    }

    function test_replace_revertsWhenSelectorMissing() public {
        _expectCutRevert(
            _singleCut(address(extra), IDiamond.FacetCutAction.Replace, _one(ExtraFacet.extraA.selector)),
            address(0),
            "",
            abi.encodeWithSelector(
                IDiamondCut.CannotReplaceFunctionThatDoesNotExists.selector, ExtraFacet.extraA.selector
            )
        );
    }

    function test_remove_mutableSelector() public {
        _addExtra();
        _executeCut(
            _singleCut(address(0), IDiamond.FacetCutAction.Remove, _one(ExtraFacet.extraA.selector)),
            address(0),
            ""
        );
        assertEq(grid.facetAddress(ExtraFacet.extraA.selector), address(0));
        assertEq(ExtraFacet(address(grid)).extraB(), 2);
        // removing the facet's last selector drops the facet from the list
        _executeCut(
            _singleCut(address(0), IDiamond.FacetCutAction.Remove, _one(ExtraFacet.extraB.selector)),
            address(0),
            ""
        );
        assertEq(grid.facetAddresses().length, 9);
        assertEq(grid.facetFunctionSelectors(address(extra)).length, 0);
    }

    function test_remove_middleFacet_keepsLoupeConsistent() public {
        _executeCut(_singleCut(address(0), IDiamond.FacetCutAction.Remove, _pauseSelectors()), address(0), "");
        address[] memory addrs = grid.facetAddresses();
        assertEq(addrs.length, 8);
        for (uint256 i; i < addrs.length; ++i) {
            assertTrue(addrs[i] != address(pauseFacet));
            bytes4[] memory s = grid.facetFunctionSelectors(addrs[i]);
            for (uint256 j; j < s.length; ++j) {
                assertEq(grid.facetAddress(s[j]), addrs[i]);
            }
        }
        assertEq(grid.facetAddress(IPausable.pause.selector), address(0));
    }

    function test_remove_revertsWhenFacetNotZero() public {
        _expectCutRevert(
            _singleCut(address(pauseFacet), IDiamond.FacetCutAction.Remove, _one(IPausable.pause.selector)),
            address(0),
            "",
            abi.encodeWithSelector(
                IDiamondCut.RemoveFacetAddressMustBeZeroAddress.selector, address(pauseFacet)
            )
        );
    }

    function test_remove_revertsWhenSelectorMissing() public {
        _expectCutRevert(
            _singleCut(address(0), IDiamond.FacetCutAction.Remove, _one(ExtraFacet.extraA.selector)),
            address(0),
            "",
            abi.encodeWithSelector(
                IDiamondCut.CannotRemoveFunctionThatDoesNotExist.selector, ExtraFacet.extraA.selector
            )
        );
    }
}
