// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";

import {GridDiamond} from "../../src/GridDiamond.sol";
import {IGrid} from "../../src/interfaces/IGrid.sol";
import {IGridInit} from "../../src/interfaces/IGridInit.sol";
import {IDiamond} from "../../src/interfaces/IDiamond.sol";
import {IDiamondCut} from "../../src/interfaces/IDiamondCut.sol";
import {ICutTimelock} from "../../src/interfaces/ICutTimelock.sol";
import {IDiamondLoupe} from "../../src/interfaces/IDiamondLoupe.sol";
import {IERC165} from "../../src/interfaces/IERC165.sol";
import {IERC173} from "../../src/interfaces/IERC173.sol";
import {IPausable} from "../../src/interfaces/IPausable.sol";
import {IWorkerRegistry} from "../../src/interfaces/IWorkerRegistry.sol";
import {IValidatorRegistry} from "../../src/interfaces/IValidatorRegistry.sol";
import {IModelRegistry} from "../../src/interfaces/IModelRegistry.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {IAudit} from "../../src/interfaces/IAudit.sol";
import {DiamondCutFacet} from "../../src/facets/DiamondCutFacet.sol";
import {DiamondLoupeFacet} from "../../src/facets/DiamondLoupeFacet.sol";
import {OwnershipFacet} from "../../src/facets/OwnershipFacet.sol";
import {PauseFacet} from "../../src/facets/PauseFacet.sol";
import {WorkerRegistryFacet} from "../../src/facets/WorkerRegistryFacet.sol";
import {ValidatorRegistryFacet} from "../../src/facets/ValidatorRegistryFacet.sol";
import {ModelRegistryFacet} from "../../src/facets/ModelRegistryFacet.sol";
import {PaymentsFacet} from "../../src/facets/PaymentsFacet.sol";
import {AuditFacet} from "../../src/facets/AuditFacet.sol";
import {FutureBlockRandomness} from "../../src/randomness/FutureBlockRandomness.sol";
import {DiamondInit} from "../../src/upgradeInitializers/DiamondInit.sol";
import {TestAIPG} from "../../src/token/TestAIPG.sol";

/// @notice Base of every contract test: a full Grid Diamond with default parameters, the test token
/// (minted by this contract, its owner) and helpers to fund and bond accounts.
abstract contract GridFixture is Test {
    IGrid internal grid;
    TestAIPG internal aipg;
    address internal owner;
    address internal treasury;

    uint64 internal constant UNBOND_DELAY = 1 days;
    uint64 internal constant DEPOSIT_DELAY = 1 days;
    uint64 internal constant CUT_DELAY = 3 days;
    uint64 internal constant CHANGE_WINDOW = 2 days;
    uint256 internal constant WORKER_MIN = 1_000e18;
    uint256 internal constant VALIDATOR_MIN = 10_000e18;
    uint16 internal constant WORKER_BPS = 8_000;
    uint16 internal constant VALIDATOR_BPS = 1_500;
    uint16 internal constant PROTOCOL_BPS = 500;
    uint16 internal constant PREMIUM_BPS = 2_500;
    // audits: every receipt audited unless a test lowers the rate
    uint16 internal constant AUDIT_RATE_BPS = 10_000;
    uint8 internal constant VALIDATORS_PER_AUDIT = 3;
    uint8 internal constant QUORUM = 2;
    uint64 internal constant COMMIT_WINDOW = 1 hours;
    uint64 internal constant REVEAL_WINDOW = 1 hours;
    uint64 internal constant RANDOMNESS_DELAY = 2;
    uint256 internal constant WORKER_SLASH = 100e18;
    uint256 internal constant FALSE_ATTESTATION_SLASH = 500e18;
    uint16 internal constant FINDER_SHARE_BPS = 5_000;
    uint256 internal constant PASS_REWARD = 1e17;
    // deployment limits: a FAIL costs at most 20% of the worker minimum, a false attestation at most 10% of the
    // validator minimum; at least 3 seats, a quorum of at least 2, windows of at least 10 minutes
    uint16 internal constant MAX_WORKER_SLASH_BPS = 2_000;
    uint16 internal constant MAX_FALSE_SLASH_BPS = 1_000;
    uint16 internal constant MAX_FINDER_SHARE_BPS = 5_000;
    uint8 internal constant MIN_VALIDATORS_PER_AUDIT = 3;
    uint8 internal constant MIN_QUORUM = 2;
    uint64 internal constant MIN_COMMIT_WINDOW = 10 minutes;
    uint64 internal constant MIN_REVEAL_WINDOW = 10 minutes;

    // Set by the last `_deployFacets` (and so by `setUp` / `_deployGrid`).
    DiamondCutFacet internal cutFacet;
    DiamondLoupeFacet internal loupeFacet;
    OwnershipFacet internal ownershipFacet;
    PauseFacet internal pauseFacet;
    WorkerRegistryFacet internal workerFacet;
    ValidatorRegistryFacet internal validatorFacet;
    ModelRegistryFacet internal modelFacet;
    PaymentsFacet internal paymentsFacet;
    AuditFacet internal auditFacet;
    DiamondInit internal diamondInit;
    // Set by `setUp`: the devnet randomness source the default init args name.
    FutureBlockRandomness internal randomness;

    function setUp() public virtual {
        owner = makeAddr("owner");
        treasury = makeAddr("treasury");
        aipg = new TestAIPG(address(this));
        vm.label(address(aipg), "AIPG");
        randomness = new FutureBlockRandomness();
        vm.label(address(randomness), "FutureBlockRandomness");
        grid = _deployGrid(_defaultInitArgs());
    }

    function _defaultInitArgs() internal view returns (IGridInit.InitArgs memory) {
        return IGridInit.InitArgs({
            token: address(aipg),
            treasury: treasury,
            workerMinimumBond: WORKER_MIN,
            validatorMinimumBond: VALIDATOR_MIN,
            unbondDelay: UNBOND_DELAY,
            depositWithdrawDelay: DEPOSIT_DELAY,
            cutDelay: CUT_DELAY,
            changeWindow: CHANGE_WINDOW,
            workerBps: WORKER_BPS,
            validatorBps: VALIDATOR_BPS,
            protocolBps: PROTOCOL_BPS,
            confidentialPremiumBps: PREMIUM_BPS,
            audit: _defaultAuditConfig(),
            auditLimits: _defaultAuditLimits(),
            randomnessSource: address(randomness)
        });
    }

    function _defaultAuditConfig() internal pure returns (IAudit.AuditConfig memory) {
        return IAudit.AuditConfig({
            auditRateBps: AUDIT_RATE_BPS,
            validatorsPerAudit: VALIDATORS_PER_AUDIT,
            quorum: QUORUM,
            commitWindow: COMMIT_WINDOW,
            revealWindow: REVEAL_WINDOW,
            randomnessDelay: RANDOMNESS_DELAY,
            workerSlashAmount: WORKER_SLASH,
            falseAttestationSlash: FALSE_ATTESTATION_SLASH,
            finderShareBps: FINDER_SHARE_BPS,
            passReward: PASS_REWARD
        });
    }

    function _defaultAuditLimits() internal pure returns (IAudit.AuditLimits memory) {
        return IAudit.AuditLimits({
            maxWorkerSlashBps: MAX_WORKER_SLASH_BPS,
            maxFalseAttestationSlashBps: MAX_FALSE_SLASH_BPS,
            maxFinderShareBps: MAX_FINDER_SHARE_BPS,
            minValidatorsPerAudit: MIN_VALIDATORS_PER_AUDIT,
            minQuorum: MIN_QUORUM,
            minCommitWindow: MIN_COMMIT_WINDOW,
            minRevealWindow: MIN_REVEAL_WINDOW
        });
    }

    /// @dev Deploys every facet, DiamondInit and the diamond (owned by `owner`).
    function _deployGrid(IGridInit.InitArgs memory args) internal returns (IGrid) {
        _deployFacets();
        return _deployDiamond(args);
    }

    function _deployFacets() internal {
        cutFacet = new DiamondCutFacet();
        loupeFacet = new DiamondLoupeFacet();
        ownershipFacet = new OwnershipFacet();
        pauseFacet = new PauseFacet();
        workerFacet = new WorkerRegistryFacet();
        validatorFacet = new ValidatorRegistryFacet();
        modelFacet = new ModelRegistryFacet();
        paymentsFacet = new PaymentsFacet();
        auditFacet = new AuditFacet();
        diamondInit = new DiamondInit();
    }

    /// @dev Deploying a diamond with `args` reverts `InvalidInit(reason)`.
    function _expectInitRevert(IGridInit.InitArgs memory args, string memory reason) internal {
        _deployFacets();
        IDiamond.FacetCut[] memory cut = _initialCut();
        bytes memory data = abi.encodeCall(IGridInit.init, (args));
        vm.expectRevert(abi.encodeWithSelector(IGridInit.InvalidInit.selector, reason));
        new GridDiamond(owner, cut, address(diamondInit), data);
    }

    /// @dev Deploys only the diamond over the facets from the last `_deployFacets` (for init revert tests).
    function _deployDiamond(IGridInit.InitArgs memory args) internal returns (IGrid g) {
        g = IGrid(
            address(
                new GridDiamond(
                    owner, _initialCut(), address(diamondInit), abi.encodeCall(IGridInit.init, (args))
                )
            )
        );
        vm.label(address(g), "GridDiamond");
    }

    function _initialCut() internal view returns (IDiamond.FacetCut[] memory cut) {
        cut = new IDiamond.FacetCut[](9);
        cut[0] = _facetCut(address(cutFacet), IDiamond.FacetCutAction.Add, _cutSelectors());
        cut[1] = _facetCut(address(loupeFacet), IDiamond.FacetCutAction.Add, _loupeSelectors());
        cut[2] = _facetCut(address(ownershipFacet), IDiamond.FacetCutAction.Add, _ownershipSelectors());
        cut[3] = _facetCut(address(pauseFacet), IDiamond.FacetCutAction.Add, _pauseSelectors());
        cut[4] = _facetCut(address(workerFacet), IDiamond.FacetCutAction.Add, _workerSelectors());
        cut[5] = _facetCut(address(validatorFacet), IDiamond.FacetCutAction.Add, _validatorSelectors());
        cut[6] = _facetCut(address(modelFacet), IDiamond.FacetCutAction.Add, _modelSelectors());
        cut[7] = _facetCut(address(paymentsFacet), IDiamond.FacetCutAction.Add, _paymentsSelectors());
        cut[8] = _facetCut(address(auditFacet), IDiamond.FacetCutAction.Add, _auditSelectors());
    }

    // ---------------------------------------------------------------- accounts

    /// @dev Mints `amount` AIPG to `who` and approves the grid for the max as `who`.
    function _fund(address who, uint256 amount) internal {
        aipg.mint(who, amount);
        vm.prank(who);
        aipg.approve(address(grid), type(uint256).max);
    }

    function _bondWorker(address who, uint256 amount) internal {
        _fund(who, amount);
        vm.prank(who);
        grid.bondWorker(amount, address(0));
    }

    function _bondValidator(address who, uint256 amount) internal {
        _fund(who, amount);
        vm.prank(who);
        grid.bondValidator(amount, address(0));
    }

    // ---------------------------------------------------------------- cuts

    function _facetCut(address facet, IDiamond.FacetCutAction action, bytes4[] memory selectors)
        internal
        pure
        returns (IDiamond.FacetCut memory)
    {
        return IDiamond.FacetCut({facetAddress: facet, action: action, functionSelectors: selectors});
    }

    /// @dev A one-entry cut.
    function _singleCut(address facet, IDiamond.FacetCutAction action, bytes4[] memory selectors)
        internal
        pure
        returns (IDiamond.FacetCut[] memory cut)
    {
        cut = new IDiamond.FacetCut[](1);
        cut[0] = _facetCut(facet, action, selectors);
    }

    /// @dev Announces `cut` as the owner and returns its hash (executable `CUT_DELAY` from now).
    function _announceCut(IDiamond.FacetCut[] memory cut, address init, bytes memory data)
        internal
        returns (bytes32 cutHash)
    {
        vm.prank(owner);
        cutHash = grid.announceDiamondCut(cut, init, data);
    }

    /// @dev Announces, waits `CUT_DELAY` and executes `cut` as the owner.
    function _executeCut(IDiamond.FacetCut[] memory cut, address init, bytes memory data) internal {
        _announceCut(cut, init, data);
        vm.warp(block.timestamp + CUT_DELAY);
        vm.prank(owner);
        grid.diamondCut(cut, init, data);
    }

    function _one(bytes4 s) internal pure returns (bytes4[] memory a) {
        a = new bytes4[](1);
        a[0] = s;
    }

    // ---------------------------------------------------------------- selectors, per facet

    function _cutSelectors() internal pure returns (bytes4[] memory s) {
        s = new bytes4[](7);
        s[0] = IDiamondCut.diamondCut.selector;
        s[1] = ICutTimelock.announceDiamondCut.selector;
        s[2] = ICutTimelock.cancelChange.selector;
        s[3] = ICutTimelock.pendingChange.selector;
        s[4] = ICutTimelock.cutDelay.selector;
        s[5] = ICutTimelock.changeWindow.selector;
        s[6] = ICutTimelock.hashDiamondCut.selector;
    }

    function _loupeSelectors() internal pure returns (bytes4[] memory s) {
        s = new bytes4[](5);
        s[0] = IDiamondLoupe.facets.selector;
        s[1] = IDiamondLoupe.facetFunctionSelectors.selector;
        s[2] = IDiamondLoupe.facetAddresses.selector;
        s[3] = IDiamondLoupe.facetAddress.selector;
        s[4] = IERC165.supportsInterface.selector;
    }

    function _ownershipSelectors() internal pure returns (bytes4[] memory s) {
        s = new bytes4[](4);
        s[0] = IERC173.owner.selector;
        s[1] = IERC173.pendingOwner.selector;
        s[2] = IERC173.transferOwnership.selector;
        s[3] = IERC173.acceptOwnership.selector;
    }

    function _pauseSelectors() internal pure returns (bytes4[] memory s) {
        s = new bytes4[](3);
        s[0] = IPausable.pause.selector;
        s[1] = IPausable.unpause.selector;
        s[2] = IPausable.paused.selector;
    }

    function _workerSelectors() internal pure returns (bytes4[] memory s) {
        s = new bytes4[](12);
        s[0] = IWorkerRegistry.bondWorker.selector;
        s[1] = IWorkerRegistry.increaseWorkerBond.selector;
        s[2] = IWorkerRegistry.requestWorkerUnbond.selector;
        s[3] = IWorkerRegistry.cancelWorkerUnbond.selector;
        s[4] = IWorkerRegistry.withdrawWorkerBond.selector;
        s[5] = IWorkerRegistry.setWorkerOperator.selector;
        s[6] = IWorkerRegistry.workerBond.selector;
        s[7] = IWorkerRegistry.workerOf.selector;
        s[8] = IWorkerRegistry.isActiveWorker.selector;
        s[9] = IWorkerRegistry.workerMinimumBond.selector;
        s[10] = IWorkerRegistry.workerUnbondDelay.selector;
        s[11] = IWorkerRegistry.totalWorkerBonded.selector;
    }

    function _validatorSelectors() internal pure returns (bytes4[] memory s) {
        s = new bytes4[](13);
        s[0] = IValidatorRegistry.bondValidator.selector;
        s[1] = IValidatorRegistry.increaseValidatorBond.selector;
        s[2] = IValidatorRegistry.requestValidatorUnbond.selector;
        s[3] = IValidatorRegistry.cancelValidatorUnbond.selector;
        s[4] = IValidatorRegistry.withdrawValidatorBond.selector;
        s[5] = IValidatorRegistry.setValidatorOperator.selector;
        s[6] = IValidatorRegistry.validatorBond.selector;
        s[7] = IValidatorRegistry.validatorOf.selector;
        s[8] = IValidatorRegistry.isActiveValidator.selector;
        s[9] = IValidatorRegistry.validatorMinimumBond.selector;
        s[10] = IValidatorRegistry.validatorUnbondDelay.selector;
        s[11] = IValidatorRegistry.totalValidatorBonded.selector;
        s[12] = IValidatorRegistry.activeValidators.selector;
    }

    function _modelSelectors() internal pure returns (bytes4[] memory s) {
        s = new bytes4[](8);
        s[0] = IModelRegistry.registerModel.selector;
        s[1] = IModelRegistry.setModelRates.selector;
        s[2] = IModelRegistry.setModelActive.selector;
        s[3] = IModelRegistry.setConfidentialPremium.selector;
        s[4] = IModelRegistry.getModel.selector;
        s[5] = IModelRegistry.modelIds.selector;
        s[6] = IModelRegistry.confidentialPremiumBps.selector;
        s[7] = IModelRegistry.computeModelId.selector;
    }

    function _paymentsSelectors() internal pure returns (bytes4[] memory s) {
        s = new bytes4[](23);
        s[21] = IPayments.decreaseGatewayCap.selector;
        s[22] = IPayments.nextReceiptSeq.selector;
        s[0] = IPayments.deposit.selector;
        s[1] = IPayments.depositFor.selector;
        s[2] = IPayments.depositWithPermit.selector;
        s[3] = IPayments.increaseGatewayCap.selector;
        s[4] = IPayments.requestDepositWithdrawal.selector;
        s[5] = IPayments.withdrawDeposit.selector;
        s[6] = IPayments.settle.selector;
        s[7] = IPayments.withdrawEarnings.selector;
        s[8] = IPayments.withdrawProtocolFees.selector;
        s[9] = IPayments.depositOf.selector;
        s[10] = IPayments.gatewayAllowance.selector;
        s[11] = IPayments.earningsOf.selector;
        s[12] = IPayments.validatorPool.selector;
        s[13] = IPayments.protocolFees.selector;
        s[14] = IPayments.revenueShares.selector;
        s[15] = IPayments.depositWithdrawDelay.selector;
        s[16] = IPayments.isSettled.selector;
        s[17] = IPayments.batchCount.selector;
        s[18] = IPayments.getBatch.selector;
        s[19] = IPayments.treasury.selector;
        s[20] = IPayments.token.selector;
    }

    function _auditSelectors() internal pure returns (bytes4[] memory s) {
        s = new bytes4[](25);
        s[0] = IAudit.fixRandomness.selector;
        s[1] = IAudit.commitVote.selector;
        s[2] = IAudit.revealVote.selector;
        s[3] = IAudit.finalize.selector;
        s[4] = IAudit.setWorkerAuditRate.selector;
        s[5] = IAudit.announceAuditConfig.selector;
        s[6] = IAudit.setAuditConfig.selector;
        s[7] = IAudit.announceRandomnessSource.selector;
        s[8] = IAudit.setRandomnessSource.selector;
        s[9] = IAudit.voteCommitment.selector;
        s[10] = IAudit.receiptLeaf.selector;
        s[11] = IAudit.receiptDigest.selector;
        s[12] = IAudit.hashAuditConfig.selector;
        s[13] = IAudit.hashRandomnessSource.selector;
        s[14] = IAudit.batchAudit.selector;
        s[15] = IAudit.isAudited.selector;
        s[16] = IAudit.assignedValidators.selector;
        s[17] = IAudit.getAudit.selector;
        s[18] = IAudit.voteOf.selector;
        s[19] = IAudit.auditConfig.selector;
        s[20] = IAudit.auditLimits.selector;
        s[21] = IAudit.workerAuditRate.selector;
        s[22] = IAudit.randomnessSource.selector;
        s[23] = IAudit.reportGatewayFault.selector;
        s[24] = IAudit.faultReported.selector;
    }
}
