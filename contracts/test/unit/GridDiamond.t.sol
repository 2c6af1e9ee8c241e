// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {GridFixture} from "../utils/GridFixture.sol";
import {GridDiamond} from "../../src/GridDiamond.sol";
import {IGrid} from "../../src/interfaces/IGrid.sol";
import {IGridInit} from "../../src/interfaces/IGridInit.sol";
import {IDiamond} from "../../src/interfaces/IDiamond.sol";
import {IDiamondCut} from "../../src/interfaces/IDiamondCut.sol";
import {IDiamondLoupe} from "../../src/interfaces/IDiamondLoupe.sol";
import {IERC165} from "../../src/interfaces/IERC165.sol";
import {IERC173} from "../../src/interfaces/IERC173.sol";
import {ICommon} from "../../src/interfaces/ICommon.sol";
import {IWorkerRegistry} from "../../src/interfaces/IWorkerRegistry.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {LibDiamond} from "../../src/libraries/LibDiamond.sol";
import {LibBonding} from "../../src/libraries/LibBonding.sol";
import {LibModels} from "../../src/libraries/LibModels.sol";
import {LibGrid} from "../../src/libraries/LibGrid.sol";
import {LibPayments} from "../../src/libraries/LibPayments.sol";
import {LibAudit} from "../../src/libraries/LibAudit.sol";
import {LibTimelock} from "../../src/libraries/LibTimelock.sol";
import {IAudit} from "../../src/interfaces/IAudit.sol";
import {ICutTimelock} from "../../src/interfaces/ICutTimelock.sol";

/// @notice Constructor, fallback, DiamondInit, loupe, ERC-165 and storage locations.
contract GridDiamondTest is GridFixture {
    // ---------------------------------------------------------------- constructor

    function test_setUp_deploysAllFacets() public view {
        assertEq(grid.facetAddresses().length, 9);
        assertEq(grid.owner(), owner);
        assertEq(grid.pendingOwner(), address(0));
        assertEq(grid.cutDelay(), CUT_DELAY);
        assertEq(grid.changeWindow(), CHANGE_WINDOW);
        assertEq(grid.token(), address(aipg));
        assertEq(grid.treasury(), treasury);
        assertEq(grid.confidentialPremiumBps(), PREMIUM_BPS);
        assertFalse(grid.paused());
    }

    function test_constructor_emitsOwnershipAndCut() public {
        _deployFacets();
        IDiamond.FacetCut[] memory cut = _initialCut();
        bytes memory data = abi.encodeCall(IGridInit.init, (_defaultInitArgs()));
        vm.expectEmit();
        emit IERC173.OwnershipTransferred(address(0), owner);
        vm.expectEmit();
        emit IDiamond.DiamondCut(cut, address(diamondInit), data);
        new GridDiamond(owner, cut, address(diamondInit), data);
    }

    function test_constructor_revertsWhenOwnerZero() public {
        _deployFacets();
        IDiamond.FacetCut[] memory cut = _initialCut();
        bytes memory data = abi.encodeCall(IGridInit.init, (_defaultInitArgs()));
        vm.expectRevert(ICommon.ZeroAddress.selector);
        new GridDiamond(address(0), cut, address(diamondInit), data);
    }

    function test_constructor_withoutInit_leavesUninitialized() public {
        _deployFacets();
        IGrid g = IGrid(address(new GridDiamond(owner, _initialCut(), address(0), "")));
        assertEq(g.owner(), owner);
        assertEq(g.cutDelay(), 0);
        assertEq(g.changeWindow(), 0);
        assertFalse(g.supportsInterface(type(IERC165).interfaceId));
    }

    // ---------------------------------------------------------------- fallback

    function test_fallback_revertsWhenFunctionNotFound() public {
        bytes4 unknown = bytes4(keccak256("nope()"));
        vm.expectRevert(abi.encodeWithSelector(IGrid.FunctionNotFound.selector, unknown));
        (bool ok,) = address(grid).call(abi.encodeWithSelector(unknown));
        ok; // expectRevert checks the call's revert
    }

    function test_fallback_revertsOnEmptyCalldata() public {
        vm.expectRevert(abi.encodeWithSelector(IGrid.FunctionNotFound.selector, bytes4(0)));
        (bool ok,) = address(grid).call("");
        ok;
    }

    function test_fallback_rejectsEth() public {
        vm.deal(address(this), 1 ether);
        (bool ok,) = address(grid).call{value: 1}("");
        assertFalse(ok, "plain transfer");
        (ok,) = address(grid).call{value: 1}(abi.encodeCall(IERC173.owner, ()));
        assertFalse(ok, "with a valid selector");
        assertEq(address(grid).balance, 0);
    }

    function test_init_notReachableThroughDiamond() public {
        vm.expectRevert(abi.encodeWithSelector(IGrid.FunctionNotFound.selector, IGridInit.init.selector));
        IGridInit(address(grid)).init(_defaultInitArgs());
    }

    // ---------------------------------------------------------------- DiamondInit validation

    function test_init_revertsWhenTokenZero() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.token = address(0);
        _expectInitRevert(a, "token");
    }

    function test_init_revertsWhenTreasuryZero() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.treasury = address(0);
        _expectInitRevert(a, "treasury");
    }

    function test_init_revertsWhenWorkerMinimumZero() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.workerMinimumBond = 0;
        _expectInitRevert(a, "workerMinimumBond");
    }

    function test_init_revertsWhenValidatorMinimumZero() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.validatorMinimumBond = 0;
        _expectInitRevert(a, "validatorMinimumBond");
    }

    function test_reactionMargin_isAMinuteOffBase() public view {
        assertEq(block.chainid, 31337);
        assertEq(diamondInit.reactionMargin(), 60);
    }

    function test_reactionMargin_isTwoDaysOnBase() public {
        vm.chainId(8453);
        assertEq(diamondInit.reactionMargin(), 2 days);
        vm.chainId(84532);
        assertEq(diamondInit.reactionMargin(), 2 days);
    }

    function test_init_revertsWhenCutDelayBelowUnbondDelayPlusMargin() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.unbondDelay = CUT_DELAY - 60 + 1;
        _expectInitRevert(a, "cutDelay");
        a.unbondDelay = CUT_DELAY - 60; // exactly the margin: accepted
        assertEq(_deployGrid(a).workerUnbondDelay(), CUT_DELAY - 60);
    }

    function test_init_revertsWhenCutDelayBelowDepositDelayPlusMargin() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.depositWithdrawDelay = CUT_DELAY - 60 + 1;
        _expectInitRevert(a, "cutDelay");
        a.depositWithdrawDelay = CUT_DELAY - 60;
        assertEq(_deployGrid(a).depositWithdrawDelay(), CUT_DELAY - 60);
    }

    function test_init_onBase_requiresTwoDaysBeyondUnbondDelay() public {
        vm.chainId(8453);
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.unbondDelay = 7 days;
        a.depositWithdrawDelay = 1 days;
        a.cutDelay = 9 days - 1;
        _expectInitRevert(a, "cutDelay");
        a.cutDelay = 9 days;
        assertEq(_deployGrid(a).cutDelay(), 9 days);
    }

    function test_init_onBase_requiresTwoDaysBeyondDepositDelay() public {
        vm.chainId(8453);
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.unbondDelay = 1 days;
        a.depositWithdrawDelay = 5 days;
        a.cutDelay = 7 days - 1;
        _expectInitRevert(a, "cutDelay");
        a.cutDelay = 7 days;
        assertEq(_deployGrid(a).cutDelay(), 7 days);
    }

    function test_init_onBaseSepolia_requiresTwoDays() public {
        vm.chainId(84532);
        IGridInit.InitArgs memory a = _defaultInitArgs();
        // the test defaults (3 days against 1-day delays) leave exactly two days
        assertEq(_deployGrid(a).cutDelay(), CUT_DELAY);
        a.unbondDelay = 1 days + 1;
        _expectInitRevert(a, "cutDelay");
    }

    function test_init_revertsWhenChangeWindowZero() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.changeWindow = 0;
        _expectInitRevert(a, "changeWindow");
    }

    function test_init_revertsWhenChangeWindowAboveCutDelay() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.changeWindow = CUT_DELAY + 1;
        _expectInitRevert(a, "changeWindow");
        a.changeWindow = CUT_DELAY;
        assertEq(_deployGrid(a).changeWindow(), CUT_DELAY);
    }

    function testFuzz_init_changeWindow(uint64 window) public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.changeWindow = window;
        if (window == 0 || window > CUT_DELAY) {
            _expectInitRevert(a, "changeWindow");
        } else {
            assertEq(_deployGrid(a).changeWindow(), window);
        }
    }

    // ---------------------------------------------------------------- audit limits and config at init

    function test_init_storesAuditLimitsAndConfig() public view {
        IAudit.AuditLimits memory l = grid.auditLimits();
        assertEq(l.maxWorkerSlashBps, MAX_WORKER_SLASH_BPS);
        assertEq(l.maxFalseAttestationSlashBps, MAX_FALSE_SLASH_BPS);
        assertEq(l.maxFinderShareBps, MAX_FINDER_SHARE_BPS);
        assertEq(l.minValidatorsPerAudit, MIN_VALIDATORS_PER_AUDIT);
        assertEq(l.minQuorum, MIN_QUORUM);
        assertEq(l.minCommitWindow, MIN_COMMIT_WINDOW);
        assertEq(l.minRevealWindow, MIN_REVEAL_WINDOW);
        assertEq(grid.auditConfig().workerSlashAmount, WORKER_SLASH);
        assertEq(grid.randomnessSource(), address(randomness));
    }

    function test_init_revertsOnBadLimits() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.auditLimits.maxWorkerSlashBps = 10_001;
        _expectInitRevert(a, "maxWorkerSlashBps");

        a = _defaultInitArgs();
        a.auditLimits.maxFalseAttestationSlashBps = 10_001;
        _expectInitRevert(a, "maxFalseAttestationSlashBps");

        a = _defaultInitArgs();
        a.auditLimits.maxFinderShareBps = 10_001;
        _expectInitRevert(a, "maxFinderShareBps");

        a = _defaultInitArgs();
        a.auditLimits.minValidatorsPerAudit = 0;
        _expectInitRevert(a, "minValidatorsPerAudit");

        a = _defaultInitArgs();
        a.auditLimits.minQuorum = 0;
        _expectInitRevert(a, "minQuorum");

        a = _defaultInitArgs();
        a.auditLimits.minCommitWindow = 0;
        _expectInitRevert(a, "minCommitWindow");

        a = _defaultInitArgs();
        a.auditLimits.minRevealWindow = 0;
        _expectInitRevert(a, "minRevealWindow");
    }

    function test_init_revertsOnAuditConfigOutsideLimits() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.audit.auditRateBps = 10_001;
        _expectInitRevert(a, "auditRateBps");

        a = _defaultInitArgs();
        a.audit.validatorsPerAudit = MIN_VALIDATORS_PER_AUDIT - 1;
        a.audit.quorum = 2;
        _expectInitRevert(a, "validatorsPerAudit");

        a = _defaultInitArgs();
        a.audit.quorum = MIN_QUORUM - 1;
        _expectInitRevert(a, "quorum");

        a = _defaultInitArgs();
        a.audit.quorum = VALIDATORS_PER_AUDIT + 1; // more than the seats
        _expectInitRevert(a, "quorum");

        a = _defaultInitArgs();
        a.audit.validatorsPerAudit = 4;
        a.audit.quorum = 2; // not a majority of 4
        _expectInitRevert(a, "quorum");

        a = _defaultInitArgs();
        a.audit.commitWindow = MIN_COMMIT_WINDOW - 1;
        _expectInitRevert(a, "commitWindow");

        a = _defaultInitArgs();
        a.audit.revealWindow = MIN_REVEAL_WINDOW - 1;
        _expectInitRevert(a, "revealWindow");

        a = _defaultInitArgs();
        a.audit.finderShareBps = MAX_FINDER_SHARE_BPS + 1;
        _expectInitRevert(a, "finderShareBps");

        a = _defaultInitArgs();
        a.audit.workerSlashAmount = WORKER_MIN * MAX_WORKER_SLASH_BPS / 10_000 + 1;
        _expectInitRevert(a, "workerSlashAmount");

        a = _defaultInitArgs();
        a.audit.falseAttestationSlash = VALIDATOR_MIN * MAX_FALSE_SLASH_BPS / 10_000 + 1;
        _expectInitRevert(a, "falseAttestationSlash");

        a = _defaultInitArgs();
        a.randomnessSource = makeAddr("no code");
        _expectInitRevert(a, "randomnessSource");
    }

    function test_init_acceptsAuditConfigAtTheLimits() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.audit.validatorsPerAudit = MIN_VALIDATORS_PER_AUDIT;
        a.audit.quorum = MIN_QUORUM;
        a.audit.commitWindow = MIN_COMMIT_WINDOW;
        a.audit.revealWindow = MIN_REVEAL_WINDOW;
        a.audit.finderShareBps = MAX_FINDER_SHARE_BPS;
        a.audit.workerSlashAmount = WORKER_MIN * MAX_WORKER_SLASH_BPS / 10_000;
        a.audit.falseAttestationSlash = VALIDATOR_MIN * MAX_FALSE_SLASH_BPS / 10_000;
        IGrid g = _deployGrid(a);
        assertEq(g.auditConfig().workerSlashAmount, 200e18);
        assertEq(g.auditConfig().falseAttestationSlash, 1_000e18);
    }

    function testFuzz_init_workerSlashWithinLimit(uint256 slash, uint16 maxBps) public {
        maxBps = uint16(bound(maxBps, 0, 10_000));
        slash = bound(slash, 0, WORKER_MIN);
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.auditLimits.maxWorkerSlashBps = maxBps;
        a.audit.workerSlashAmount = slash;
        if (slash > WORKER_MIN * maxBps / 10_000) {
            _expectInitRevert(a, "workerSlashAmount");
        } else {
            assertEq(_deployGrid(a).auditConfig().workerSlashAmount, slash);
        }
    }

    function test_init_revertsWhenPremiumTooHigh() public {
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.confidentialPremiumBps = 10_001;
        _expectInitRevert(a, "confidentialPremiumBps");
    }

    function test_init_revertsWhenImmutableSelectorMissing() public {
        _deployFacets();
        IDiamond.FacetCut[] memory full = _initialCut();
        IDiamond.FacetCut[] memory cut = new IDiamond.FacetCut[](7); // without PaymentsFacet (and AuditFacet)
        for (uint256 i; i < 7; ++i) {
            cut[i] = full[i];
        }
        bytes memory data = abi.encodeCall(IGridInit.init, (_defaultInitArgs()));
        vm.expectRevert(abi.encodeWithSelector(IGridInit.InvalidInit.selector, "immutable selector missing"));
        new GridDiamond(owner, cut, address(diamondInit), data);
    }

    function testFuzz_init_cutDelayMustExceedBothDelaysByTheMargin(
        uint64 unbondDelay,
        uint64 depositDelay,
        uint64 cutDelay
    ) public {
        depositDelay = uint64(bound(depositDelay, 1, type(uint64).max)); // payments rejects a zero delay
        IGridInit.InitArgs memory a = _defaultInitArgs();
        a.unbondDelay = unbondDelay;
        a.depositWithdrawDelay = depositDelay;
        a.cutDelay = cutDelay;
        a.changeWindow = 1;
        if (uint256(cutDelay) < uint256(unbondDelay) + 60 || uint256(cutDelay) < uint256(depositDelay) + 60) {
            _expectInitRevert(a, "cutDelay");
        } else {
            IGrid g = _deployGrid(a);
            assertEq(g.cutDelay(), cutDelay);
            assertEq(g.workerUnbondDelay(), unbondDelay);
            assertEq(g.validatorUnbondDelay(), unbondDelay);
        }
    }

    function test_init_directCallOnInitContract_reverts() public {
        // outside a diamond there are no selectors to mark immutable
        vm.expectRevert(abi.encodeWithSelector(IGridInit.InvalidInit.selector, "immutable selector missing"));
        diamondInit.init(_defaultInitArgs());
        assertEq(grid.workerMinimumBond(), WORKER_MIN);
    }

    function test_init_marksExpectedSelectorsImmutable() public view {
        bytes4[] memory s = diamondInit.immutableSelectors();
        assertEq(s.length, 38);
        for (uint256 i; i < s.length; ++i) {
            assertTrue(grid.facetAddress(s[i]) != address(0));
        }
    }

    // ---------------------------------------------------------------- loupe + ERC-165

    function test_loupe_facetsMatchTheCut() public view {
        IDiamond.FacetCut[] memory cut = _initialCut();
        IDiamondLoupe.Facet[] memory f = grid.facets();
        assertEq(f.length, cut.length);
        for (uint256 i; i < cut.length; ++i) {
            assertEq(f[i].facetAddress, cut[i].facetAddress);
            assertEq(f[i].functionSelectors.length, cut[i].functionSelectors.length);
            bytes4[] memory byFacet = grid.facetFunctionSelectors(cut[i].facetAddress);
            for (uint256 j; j < cut[i].functionSelectors.length; ++j) {
                assertEq(f[i].functionSelectors[j], cut[i].functionSelectors[j]);
                assertEq(byFacet[j], cut[i].functionSelectors[j]);
                assertEq(grid.facetAddress(cut[i].functionSelectors[j]), cut[i].facetAddress);
            }
            assertEq(grid.facetAddresses()[i], cut[i].facetAddress);
        }
    }

    function test_loupe_unknownSelectorAndFacet_areEmpty() public view {
        assertEq(grid.facetAddress(bytes4(0xdeadbeef)), address(0));
        assertEq(grid.facetFunctionSelectors(address(0xbeef)).length, 0);
    }

    function test_supportsInterface() public view {
        assertTrue(grid.supportsInterface(type(IERC165).interfaceId));
        assertTrue(grid.supportsInterface(type(IDiamondCut).interfaceId));
        assertTrue(grid.supportsInterface(type(IDiamondLoupe).interfaceId));
        assertTrue(grid.supportsInterface(type(IERC173).interfaceId));
        assertTrue(grid.supportsInterface(IERC173.owner.selector ^ IERC173.transferOwnership.selector));
        assertEq(IERC173.owner.selector ^ IERC173.transferOwnership.selector, bytes4(0x7f5828d0));
        assertEq(type(IDiamondCut).interfaceId, bytes4(0x1f931c1c));
        assertEq(type(IDiamondLoupe).interfaceId, bytes4(0x48e2b093));
        assertFalse(grid.supportsInterface(0xffffffff));
        assertFalse(grid.supportsInterface(type(IWorkerRegistry).interfaceId));
    }

    // ---------------------------------------------------------------- storage locations (ERC-7201)

    function _erc7201(string memory id) internal pure returns (bytes32) {
        return keccak256(abi.encode(uint256(keccak256(bytes(id))) - 1)) & ~bytes32(uint256(0xff));
    }

    function test_storageSlots_matchErc7201() public pure {
        assertEq(LibDiamond.STORAGE_SLOT, _erc7201("aipg.storage.Diamond"));
        assertEq(LibBonding.WORKER_SLOT, _erc7201("aipg.storage.Bonding.Worker"));
        assertEq(LibBonding.VALIDATOR_SLOT, _erc7201("aipg.storage.Bonding.Validator"));
        assertEq(LibModels.STORAGE_SLOT, _erc7201("aipg.storage.Models"));
        assertEq(LibGrid.STORAGE_SLOT, _erc7201("aipg.storage.Grid"));
        assertEq(LibPayments.STORAGE_SLOT, _erc7201("aipg.storage.Payments"));
        assertEq(LibAudit.STORAGE_SLOT, _erc7201("aipg.storage.Audit"));
        assertEq(LibTimelock.STORAGE_SLOT, _erc7201("aipg.storage.Timelock"));
    }

    function test_storageSlots_holdTheState() public view {
        // LibDiamond.Layout: contractOwner is the 5th slot (after 2 mappings, an array, a mapping)
        assertEq(
            address(uint160(uint256(vm.load(address(grid), bytes32(uint256(LibDiamond.STORAGE_SLOT) + 4))))),
            owner
        );
        // LibBonding.Layout: minimum first
        assertEq(uint256(vm.load(address(grid), LibBonding.WORKER_SLOT)), WORKER_MIN);
        assertEq(uint256(vm.load(address(grid), LibBonding.VALIDATOR_SLOT)), VALIDATOR_MIN);
        // LibModels.Layout: premium after a mapping and an array
        assertEq(uint256(vm.load(address(grid), bytes32(uint256(LibModels.STORAGE_SLOT) + 2))), PREMIUM_BPS);
        // LibTimelock.Layout: delay and window share the first slot
        uint256 timelock = uint256(vm.load(address(grid), LibTimelock.STORAGE_SLOT));
        assertEq(uint64(timelock), CUT_DELAY);
        assertEq(uint64(timelock >> 64), CHANGE_WINDOW);
    }

    function test_paymentsSelectors_coverIPayments() public view {
        // every IPayments function routes to the payments facet
        bytes4[] memory s = _paymentsSelectors();
        for (uint256 i; i < s.length; ++i) {
            assertEq(grid.facetAddress(s[i]), address(paymentsFacet));
        }
        assertEq(grid.facetAddress(IPayments.settle.selector), address(paymentsFacet));
        assertEq(grid.facetAddress(IPayments.nextReceiptSeq.selector), address(paymentsFacet));
        assertEq(grid.facetAddress(IPayments.increaseGatewayCap.selector), address(paymentsFacet));
        assertEq(grid.facetAddress(IPayments.decreaseGatewayCap.selector), address(paymentsFacet));
    }

    function test_cutSelectors_coverICutTimelock() public view {
        bytes4[] memory s = _cutSelectors();
        for (uint256 i; i < s.length; ++i) {
            assertEq(grid.facetAddress(s[i]), address(cutFacet));
        }
        assertEq(grid.facetAddress(ICutTimelock.pendingChange.selector), address(cutFacet));
        assertEq(grid.facetAddress(ICutTimelock.changeWindow.selector), address(cutFacet));
    }
}
