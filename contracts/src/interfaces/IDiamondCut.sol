// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IDiamond} from "./IDiamond.sol";

/// @title EIP-2535 cut.
interface IDiamondCut is IDiamond {
    error NoSelectorsProvidedForFacetForCut(address facetAddress);
    error CannotAddSelectorsToZeroAddress(bytes4[] selectors);
    error NoBytecodeAtAddress(address contractAddress, string message);
    error IncorrectFacetCutAction(uint8 action);
    error CannotAddFunctionToDiamondThatAlreadyExists(bytes4 selector);
    error CannotReplaceFunctionsFromFacetWithZeroAddress(bytes4[] selectors);
    error CannotReplaceFunctionWithTheSameFunctionFromTheSameFacet(bytes4 selector);
    error CannotReplaceFunctionThatDoesNotExists(bytes4 selector);
    error RemoveFacetAddressMustBeZeroAddress(address facetAddress);
    error CannotRemoveFunctionThatDoesNotExist(bytes4 selector);
    error InitializationFunctionReverted(address initializationContractAddress, bytes data);

    /// @notice Adds, replaces or removes functions, then optionally delegatecalls `_init` with `_calldata`.
    /// @dev Reverts with `ImmutableSelector` for any Replace or Remove of a selector marked immutable.
    function diamondCut(FacetCut[] calldata _diamondCut, address _init, bytes calldata _calldata) external;
}
