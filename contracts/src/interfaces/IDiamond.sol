// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title EIP-2535 cut types, shared by IDiamondCut and the diamond constructor.
interface IDiamond {
    enum FacetCutAction {
        Add,
        Replace,
        Remove
    }

    struct FacetCut {
        address facetAddress;
        FacetCutAction action;
        bytes4[] functionSelectors;
    }

    /// @notice Emitted after every cut, including the one in the constructor.
    event DiamondCut(FacetCut[] _diamondCut, address _init, bytes _calldata);
}
