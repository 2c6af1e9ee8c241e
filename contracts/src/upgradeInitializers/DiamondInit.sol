// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IGridInit} from "../interfaces/IGridInit.sol";
import {IBonding} from "../interfaces/IBonding.sol";
import {IWorkerRegistry} from "../interfaces/IWorkerRegistry.sol";
import {IValidatorRegistry} from "../interfaces/IValidatorRegistry.sol";
import {ICutTimelock} from "../interfaces/ICutTimelock.sol";
import {IDiamondCut} from "../interfaces/IDiamondCut.sol";
import {IDiamondLoupe} from "../interfaces/IDiamondLoupe.sol";
import {IERC165} from "../interfaces/IERC165.sol";
import {IERC173} from "../interfaces/IERC173.sol";
import {IPayments} from "../interfaces/IPayments.sol";
import {LibDiamond} from "../libraries/LibDiamond.sol";
import {LibGrid} from "../libraries/LibGrid.sol";
import {LibBonding} from "../libraries/LibBonding.sol";
import {LibModels} from "../libraries/LibModels.sol";
import {LibPayments} from "../libraries/LibPayments.sol";
import {LibAudit} from "../libraries/LibAudit.sol";
import {LibTimelock} from "../libraries/LibTimelock.sol";

/// @title One-time deployment initializer, delegatecalled by the GridDiamond constructor.
/// @notice Validates and stores the deployment parameters, registers ERC-165 interfaces and marks the
/// selectors that stakes and withdrawals depend on as immutable.
contract DiamondInit is IGridInit {
    /// @dev Plain ERC-173: `owner() ^ transferOwnership(address)`. Our IERC173 adds the two-step functions,
    /// so its own interface id differs.
    bytes4 internal constant ERC173_INTERFACE_ID = 0x7f5828d0;

    /// @notice The least time, beyond every exit delay, that anyone gets to react to an announced change: two
    /// days on Base (mainnet and Sepolia), a minute elsewhere (devnets, tests).
    function reactionMargin() public view returns (uint64) {
        return block.chainid == 8453 || block.chainid == 84532 ? 2 days : 60;
    }

    /// @notice Initializes a new diamond; runs once, through the constructor's cut.
    /// @dev Reverts `InvalidInit(reason)` on bad parameters, on a second call, or if a selector to be marked
    /// immutable is not in the diamond.
    function init(InitArgs calldata args) external {
        LibDiamond.Layout storage d = LibDiamond.layout();
        if (d.initialized) revert InvalidInit("already initialized");
        if (args.token == address(0)) revert InvalidInit("token");
        if (args.treasury == address(0)) revert InvalidInit("treasury");
        if (args.workerMinimumBond == 0) revert InvalidInit("workerMinimumBond");
        if (args.validatorMinimumBond == 0) revert InvalidInit("validatorMinimumBond");
        uint64 margin = reactionMargin();
        if (
            uint256(args.cutDelay) < uint256(args.unbondDelay) + margin
                || uint256(args.cutDelay) < uint256(args.depositWithdrawDelay) + margin
        ) revert InvalidInit("cutDelay");
        if (args.changeWindow == 0 || args.changeWindow > args.cutDelay) revert InvalidInit("changeWindow");
        if (args.confidentialPremiumBps > LibModels.MAX_PREMIUM_BPS) {
            revert InvalidInit("confidentialPremiumBps");
        }

        d.initialized = true;
        LibTimelock.configure(args.cutDelay, args.changeWindow);

        LibGrid.Layout storage g = LibGrid.layout();
        g.token = IERC20(args.token);
        g.treasury = args.treasury;

        LibBonding.configure(IBonding.Role.Worker, args.workerMinimumBond, args.unbondDelay);
        LibBonding.configure(IBonding.Role.Validator, args.validatorMinimumBond, args.unbondDelay);
        LibModels.setConfidentialPremium(args.confidentialPremiumBps);
        LibPayments.initialize(args.depositWithdrawDelay, args.workerBps, args.validatorBps, args.protocolBps);
        // Reverts InvalidInit with the broken rule: a limit (maxWorkerSlashBps, …), then a config rule within
        // the limits (auditRateBps, validatorsPerAudit, quorum, commitWindow, …), or randomnessSource (no code).
        LibAudit.initialize(args.audit, args.auditLimits, args.randomnessSource);

        d.supportedInterfaces[type(IERC165).interfaceId] = true;
        d.supportedInterfaces[type(IDiamondCut).interfaceId] = true;
        d.supportedInterfaces[type(IDiamondLoupe).interfaceId] = true;
        d.supportedInterfaces[type(IERC173).interfaceId] = true; // with the two-step extension
        d.supportedInterfaces[ERC173_INTERFACE_ID] = true; // what standard tooling asks for

        bytes4[] memory selectors = immutableSelectors();
        for (uint256 i; i < selectors.length; ++i) {
            if (d.selectorToFacetAndPosition[selectors[i]].facetAddress == address(0)) {
                revert InvalidInit("immutable selector missing");
            }
            LibDiamond.markImmutable(selectors[i]);
        }
    }

    /// @notice The selectors `init` marks immutable: all bonding functions, the cut and its timelock,
    /// and the payer/earner exits of payments.
    /// @dev No audit selector is in this list, on purpose (see AuditFacet): audits lock nothing, so removing
    /// or replacing one can never trap a stake or a reward, and the code that slashes must stay fixable
    /// (behind the cut delay like any upgrade).
    function immutableSelectors() public pure returns (bytes4[] memory s) {
        s = new bytes4[](38);
        uint256 i;
        // worker registry (12)
        s[i++] = IWorkerRegistry.bondWorker.selector;
        s[i++] = IWorkerRegistry.increaseWorkerBond.selector;
        s[i++] = IWorkerRegistry.requestWorkerUnbond.selector;
        s[i++] = IWorkerRegistry.cancelWorkerUnbond.selector;
        s[i++] = IWorkerRegistry.withdrawWorkerBond.selector;
        s[i++] = IWorkerRegistry.setWorkerOperator.selector;
        s[i++] = IWorkerRegistry.workerBond.selector;
        s[i++] = IWorkerRegistry.workerOf.selector;
        s[i++] = IWorkerRegistry.isActiveWorker.selector;
        s[i++] = IWorkerRegistry.workerMinimumBond.selector;
        s[i++] = IWorkerRegistry.workerUnbondDelay.selector;
        s[i++] = IWorkerRegistry.totalWorkerBonded.selector;
        // validator registry (13)
        s[i++] = IValidatorRegistry.bondValidator.selector;
        s[i++] = IValidatorRegistry.increaseValidatorBond.selector;
        s[i++] = IValidatorRegistry.requestValidatorUnbond.selector;
        s[i++] = IValidatorRegistry.cancelValidatorUnbond.selector;
        s[i++] = IValidatorRegistry.withdrawValidatorBond.selector;
        s[i++] = IValidatorRegistry.setValidatorOperator.selector;
        s[i++] = IValidatorRegistry.validatorBond.selector;
        s[i++] = IValidatorRegistry.validatorOf.selector;
        s[i++] = IValidatorRegistry.isActiveValidator.selector;
        s[i++] = IValidatorRegistry.validatorMinimumBond.selector;
        s[i++] = IValidatorRegistry.validatorUnbondDelay.selector;
        s[i++] = IValidatorRegistry.totalValidatorBonded.selector;
        s[i++] = IValidatorRegistry.activeValidators.selector;
        // cut + timelock (7)
        s[i++] = IDiamondCut.diamondCut.selector;
        s[i++] = ICutTimelock.announceDiamondCut.selector;
        s[i++] = ICutTimelock.cancelChange.selector;
        s[i++] = ICutTimelock.pendingChange.selector;
        s[i++] = ICutTimelock.cutDelay.selector;
        s[i++] = ICutTimelock.changeWindow.selector;
        s[i++] = ICutTimelock.hashDiamondCut.selector;
        // payments exits (6): a payer can always lower what a gateway may take
        s[i++] = IPayments.decreaseGatewayCap.selector;
        s[i++] = IPayments.withdrawDeposit.selector;
        s[i++] = IPayments.requestDepositWithdrawal.selector;
        s[i++] = IPayments.withdrawEarnings.selector;
        s[i++] = IPayments.depositOf.selector;
        s[i++] = IPayments.earningsOf.selector;
    }
}
