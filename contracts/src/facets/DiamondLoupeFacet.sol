// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IDiamondLoupe} from "../interfaces/IDiamondLoupe.sol";
import {IERC165} from "../interfaces/IERC165.sol";
import {LibDiamond} from "../libraries/LibDiamond.sol";

/// @title EIP-2535 loupe and ERC-165.
contract DiamondLoupeFacet is IDiamondLoupe, IERC165 {
    /// @notice Every facet with its selectors.
    function facets() external view returns (Facet[] memory facets_) {
        LibDiamond.Layout storage l = LibDiamond.layout();
        uint256 numFacets = l.facetAddresses.length;
        facets_ = new Facet[](numFacets);
        for (uint256 i; i < numFacets; ++i) {
            address facetAddress_ = l.facetAddresses[i];
            facets_[i].facetAddress = facetAddress_;
            facets_[i].functionSelectors = l.facetFunctionSelectors[facetAddress_].functionSelectors;
        }
    }

    /// @notice The selectors `_facet` serves (empty for an unknown address).
    function facetFunctionSelectors(address _facet)
        external
        view
        returns (bytes4[] memory facetFunctionSelectors_)
    {
        facetFunctionSelectors_ = LibDiamond.layout().facetFunctionSelectors[_facet].functionSelectors;
    }

    /// @notice Every facet address.
    function facetAddresses() external view returns (address[] memory facetAddresses_) {
        facetAddresses_ = LibDiamond.layout().facetAddresses;
    }

    /// @notice The facet serving `_functionSelector`, or address(0).
    function facetAddress(bytes4 _functionSelector) external view returns (address facetAddress_) {
        facetAddress_ = LibDiamond.layout().selectorToFacetAndPosition[_functionSelector].facetAddress;
    }

    /// @notice ERC-165: whether the diamond implements `interfaceId`.
    /// @dev Interfaces are registered by DiamondInit (IERC165, IDiamondCut, IDiamondLoupe, IERC173).
    function supportsInterface(bytes4 interfaceId) external view returns (bool) {
        return LibDiamond.layout().supportedInterfaces[interfaceId];
    }
}
