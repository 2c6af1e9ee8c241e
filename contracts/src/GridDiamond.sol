// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IDiamond} from "./interfaces/IDiamond.sol";
import {IGrid} from "./interfaces/IGrid.sol";
import {ICommon} from "./interfaces/ICommon.sol";
import {LibDiamond} from "./libraries/LibDiamond.sol";

/// @title The AI Power Grid diamond (EIP-2535): one address, every facet behind it.
/// @notice Holds all AIPG (bonds, escrow, earnings, pools). Accepts no ETH.
contract GridDiamond {
    /// @notice Sets `owner`, performs the initial cut (no announcement needed) and the init delegatecall.
    /// @param owner The first owner (a timelock or multisig in production).
    /// @param cut The initial facets.
    /// @param init Contract delegatecalled with `initCalldata` after the cut (DiamondInit).
    /// @param initCalldata Usually `abi.encodeCall(IGridInit.init, (args))`.
    constructor(address owner, IDiamond.FacetCut[] memory cut, address init, bytes memory initCalldata) {
        if (owner == address(0)) revert ICommon.ZeroAddress();
        LibDiamond.setContractOwner(owner);
        LibDiamond.diamondCut(cut, init, initCalldata);
    }

    /// @notice Routes every call to the facet that serves its selector.
    /// @dev Not payable: any call carrying ETH reverts, and there is no `receive`.
    fallback() external {
        address facet = LibDiamond.layout().selectorToFacetAndPosition[msg.sig].facetAddress;
        if (facet == address(0)) revert IGrid.FunctionNotFound(msg.sig);
        assembly {
            calldatacopy(0, 0, calldatasize())
            let result := delegatecall(gas(), facet, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch result
            case 0 { revert(0, returndatasize()) }
            default { return(0, returndatasize()) }
        }
    }
}
