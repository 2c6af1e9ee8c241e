// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IDiamondCut} from "../../src/interfaces/IDiamondCut.sol";

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

    function test_announce_setsExecutableAt() public {
        bytes32 h = keccak256("cut");
        uint64 at = uint64(block.timestamp) + CUT_DELAY;
        vm.expectEmit(address(grid));
        emit ICutTimelock.DiamondCutAnnounced(h, at);
        vm.prank(owner);
        grid.announceDiamondCut(h);
        assertEq(grid.cutExecutableAt(h), at);
    }

    function test_announce_againRestartsDelay() public {
        bytes32 h = keccak256("cut");
        vm.prank(owner);
        grid.announceDiamondCut(h);
        vm.warp(block.timestamp + 1 days);
        vm.prank(owner);
        grid.announceDiamondCut(h);
        assertEq(grid.cutExecutableAt(h), uint64(block.timestamp) + CUT_DELAY);
    }

    function test_announce_revertsWhenNotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, stranger));
        vm.prank(stranger);
        grid.announceDiamondCut(keccak256("cut"));
    }

    function test_cancel_clearsAnnouncement() public {
        bytes32 h = keccak256("cut");
        vm.prank(owner);
        grid.announceDiamondCut(h);
        vm.expectEmit(address(grid));
        emit ICutTimelock.DiamondCutCancelled(h);
        vm.prank(owner);
        grid.cancelDiamondCut(h);
        assertEq(grid.cutExecutableAt(h), 0);
    }

    function test_cancel_revertsWhenNotAnnounced() public {
        bytes32 h = keccak256("cut");
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.CutNotAnnounced.selector, h));
        vm.prank(owner);
        grid.cancelDiamondCut(h);
    }

    function test_cancel_revertsWhenNotOwner() public {
        bytes32 h = keccak256("cut");
        vm.prank(owner);
        grid.announceDiamondCut(h);
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, stranger));
        vm.prank(stranger);
        grid.cancelDiamondCut(h);
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
        assertEq(grid.cutExecutableAt(h), 0);

        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.CutNotAnnounced.selector, h));
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
    }

    function test_diamondCut_revertsWhenNotAnnounced() public {
        IDiamond.FacetCut[] memory cut =
            _singleCut(address(extra), IDiamond.FacetCutAction.Add, _extraSelectors());
        bytes32 h = grid.hashDiamondCut(cut, address(0), "");
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.CutNotAnnounced.selector, h));
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
    }

    function test_diamondCut_revertsWhenTooEarly() public {
        IDiamond.FacetCut[] memory cut =
            _singleCut(address(extra), IDiamond.FacetCutAction.Add, _extraSelectors());
        bytes32 h = _announceCut(cut, address(0), "");
        uint64 at = uint64(block.timestamp) + CUT_DELAY;
        vm.warp(at - 1);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.CutNotReady.selector, h, at));
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
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.CutNotAnnounced.selector, other));
        vm.prank(owner);
        grid.diamondCut(cut, address(cutInit), data);
    }

    function test_diamondCut_revertsWhenCancelled() public {
        IDiamond.FacetCut[] memory cut =
            _singleCut(address(extra), IDiamond.FacetCutAction.Add, _extraSelectors());
        bytes32 h = _announceCut(cut, address(0), "");
        vm.prank(owner);
        grid.cancelDiamondCut(h);
        vm.warp(block.timestamp + CUT_DELAY);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.CutNotAnnounced.selector, h));
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

    function testFuzz_diamondCut_readyExactlyAfterDelay(uint256 wait) public {
        wait = bound(wait, 0, 2 * uint256(CUT_DELAY));
        IDiamond.FacetCut[] memory cut =
            _singleCut(address(extra), IDiamond.FacetCutAction.Add, _extraSelectors());
        bytes32 h = _announceCut(cut, address(0), "");
        uint64 at = uint64(block.timestamp) + CUT_DELAY;
        vm.warp(block.timestamp + wait);
        if (wait < CUT_DELAY) {
            vm.expectRevert(abi.encodeWithSelector(ICutTimelock.CutNotReady.selector, h, at));
        }
        vm.prank(owner);
        grid.diamondCut(cut, address(0), "");
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
