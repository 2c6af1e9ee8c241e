// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IDiamondCut} from "./IDiamondCut.sol";
import {ICutTimelock} from "./ICutTimelock.sol";
import {IDiamondLoupe} from "./IDiamondLoupe.sol";
import {IERC165} from "./IERC165.sol";
import {IERC173} from "./IERC173.sol";
import {IPausable} from "./IPausable.sol";
import {IWorkerRegistry} from "./IWorkerRegistry.sol";
import {IValidatorRegistry} from "./IValidatorRegistry.sol";
import {IModelRegistry} from "./IModelRegistry.sol";
import {IPayments} from "./IPayments.sol";
import {IAudit} from "./IAudit.sol";

/// @title The whole Grid Diamond as one interface: what clients call at the diamond's address.
/// @dev `packages/chain` generates its `gridAbi` from this interface's forge artifact.
interface IGrid is
    IDiamondCut,
    ICutTimelock,
    IDiamondLoupe,
    IERC165,
    IERC173,
    IPausable,
    IWorkerRegistry,
    IValidatorRegistry,
    IModelRegistry,
    IPayments,
    IAudit
{
    /// @notice Thrown by the diamond's fallback for a selector no facet serves.
    error FunctionNotFound(bytes4 selector);
    /// @notice Thrown by `diamondCut` for a Replace or Remove of a selector that stakes depend on.
    error ImmutableSelector(bytes4 selector);
}
