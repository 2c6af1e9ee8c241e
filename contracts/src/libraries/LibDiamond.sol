// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IDiamond} from "../interfaces/IDiamond.sol";
import {IDiamondCut} from "../interfaces/IDiamondCut.sol";
import {IERC173} from "../interfaces/IERC173.sol";
import {IGrid} from "../interfaces/IGrid.sol";

/// @title Diamond storage and cut logic (EIP-2535, after mudgen/diamond-3), plus the state behind
/// two-step ownership and immutable selectors (the cut timelock lives in LibTimelock).
library LibDiamond {

    struct FacetAddressAndPosition {
        address facetAddress;
        uint96 functionSelectorPosition; // index in facetFunctionSelectors[facetAddress].functionSelectors
    }

    struct FacetFunctionSelectors {
        bytes4[] functionSelectors;
        uint256 facetAddressPosition; // index of the facet in facetAddresses
    }

    /// @custom:storage-location erc7201:aipg.storage.Diamond
    struct Layout {
        mapping(bytes4 => FacetAddressAndPosition) selectorToFacetAndPosition;
        mapping(address => FacetFunctionSelectors) facetFunctionSelectors;
        address[] facetAddresses;
        mapping(bytes4 => bool) supportedInterfaces;
        address contractOwner;
        address pendingOwner;
        // Once true, never false again: Replace and Remove of the selector revert.
        mapping(bytes4 => bool) immutableSelectors;
        bool initialized; // DiamondInit.init ran
    }

    // keccak256(abi.encode(uint256(keccak256("aipg.storage.Diamond")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant STORAGE_SLOT =
        0xfc6e147979a4aa791ee895215660b4cb27e18c1b48f39bf6d496e79be66e2000;

    function layout() internal pure returns (Layout storage l) {
        bytes32 slot = STORAGE_SLOT;
        assembly {
            l.slot := slot
        }
    }

    // ---------------------------------------------------------------- ownership

    function contractOwner() internal view returns (address) {
        return layout().contractOwner;
    }

    function enforceIsContractOwner() internal view {
        if (msg.sender != layout().contractOwner) revert IERC173.NotOwner(msg.sender);
    }

    /// @dev Sets the owner immediately and clears any pending transfer.
    function setContractOwner(address newOwner) internal {
        Layout storage l = layout();
        address previousOwner = l.contractOwner;
        l.contractOwner = newOwner;
        l.pendingOwner = address(0);
        emit IERC173.OwnershipTransferred(previousOwner, newOwner);
    }

    // ---------------------------------------------------------------- immutable selectors

    function markImmutable(bytes4 selector) internal {
        layout().immutableSelectors[selector] = true;
    }

    function isImmutable(bytes4 selector) internal view returns (bool) {
        return layout().immutableSelectors[selector];
    }

    // ---------------------------------------------------------------- cut

    /// @dev Internal cut with no timelock: the constructor calls it directly, DiamondCutFacet after its checks.
    function diamondCut(IDiamond.FacetCut[] memory _diamondCut, address _init, bytes memory _calldata)
        internal
    {
        for (uint256 i; i < _diamondCut.length; ++i) {
            IDiamond.FacetCutAction action = _diamondCut[i].action;
            address facet = _diamondCut[i].facetAddress;
            bytes4[] memory selectors = _diamondCut[i].functionSelectors;
            if (selectors.length == 0) revert IDiamondCut.NoSelectorsProvidedForFacetForCut(facet);
            if (action == IDiamond.FacetCutAction.Add) {
                addFunctions(facet, selectors);
            } else if (action == IDiamond.FacetCutAction.Replace) {
                replaceFunctions(facet, selectors);
            } else if (action == IDiamond.FacetCutAction.Remove) {
                removeFunctions(facet, selectors);
            } else {
                revert IDiamondCut.IncorrectFacetCutAction(uint8(action));
            }
        }
        emit IDiamond.DiamondCut(_diamondCut, _init, _calldata);
        initializeDiamondCut(_init, _calldata);
    }

    function addFunctions(address _facetAddress, bytes4[] memory _functionSelectors) internal {
        if (_facetAddress == address(0)) revert IDiamondCut.CannotAddSelectorsToZeroAddress(_functionSelectors);
        Layout storage l = layout();
        uint96 selectorPosition = uint96(l.facetFunctionSelectors[_facetAddress].functionSelectors.length);
        if (selectorPosition == 0) addFacet(l, _facetAddress);
        for (uint256 i; i < _functionSelectors.length; ++i) {
            bytes4 selector = _functionSelectors[i];
            if (l.selectorToFacetAndPosition[selector].facetAddress != address(0)) {
                revert IDiamondCut.CannotAddFunctionToDiamondThatAlreadyExists(selector);
            }
            addFunction(l, selector, selectorPosition, _facetAddress);
            // A facet cannot hold 2**96 selectors: each one costs a storage write.
            unchecked {
                ++selectorPosition;
            }
        }
    }

    function replaceFunctions(address _facetAddress, bytes4[] memory _functionSelectors) internal {
        if (_facetAddress == address(0)) {
            revert IDiamondCut.CannotReplaceFunctionsFromFacetWithZeroAddress(_functionSelectors);
        }
        Layout storage l = layout();
        uint96 selectorPosition = uint96(l.facetFunctionSelectors[_facetAddress].functionSelectors.length);
        if (selectorPosition == 0) addFacet(l, _facetAddress);
        for (uint256 i; i < _functionSelectors.length; ++i) {
            bytes4 selector = _functionSelectors[i];
            address oldFacetAddress = l.selectorToFacetAndPosition[selector].facetAddress;
            if (l.immutableSelectors[selector]) revert IGrid.ImmutableSelector(selector);
            if (oldFacetAddress == _facetAddress) {
                revert IDiamondCut.CannotReplaceFunctionWithTheSameFunctionFromTheSameFacet(selector);
            }
            if (oldFacetAddress == address(0)) revert IDiamondCut.CannotReplaceFunctionThatDoesNotExists(selector);
            removeFunction(l, oldFacetAddress, selector);
            addFunction(l, selector, selectorPosition, _facetAddress);
            // A facet cannot hold 2**96 selectors: each one costs a storage write.
            unchecked {
                ++selectorPosition;
            }
        }
    }

    function removeFunctions(address _facetAddress, bytes4[] memory _functionSelectors) internal {
        if (_facetAddress != address(0)) revert IDiamondCut.RemoveFacetAddressMustBeZeroAddress(_facetAddress);
        Layout storage l = layout();
        for (uint256 i; i < _functionSelectors.length; ++i) {
            bytes4 selector = _functionSelectors[i];
            address oldFacetAddress = l.selectorToFacetAndPosition[selector].facetAddress;
            if (l.immutableSelectors[selector]) revert IGrid.ImmutableSelector(selector);
            if (oldFacetAddress == address(0)) revert IDiamondCut.CannotRemoveFunctionThatDoesNotExist(selector);
            removeFunction(l, oldFacetAddress, selector);
        }
    }

    function addFacet(Layout storage l, address _facetAddress) private {
        enforceHasContractCode(_facetAddress, "LibDiamond: new facet has no code");
        l.facetFunctionSelectors[_facetAddress].facetAddressPosition = l.facetAddresses.length;
        l.facetAddresses.push(_facetAddress);
    }

    function addFunction(Layout storage l, bytes4 _selector, uint96 _selectorPosition, address _facetAddress)
        private
    {
        l.selectorToFacetAndPosition[_selector] = FacetAddressAndPosition(_facetAddress, _selectorPosition);
        l.facetFunctionSelectors[_facetAddress].functionSelectors.push(_selector);
    }

    /// @dev Swap-and-pop from the facet's selector list; drops the facet when its last selector goes.
    function removeFunction(Layout storage l, address _facetAddress, bytes4 _selector) private {
        bytes4[] storage selectors = l.facetFunctionSelectors[_facetAddress].functionSelectors;
        uint256 selectorPosition = l.selectorToFacetAndPosition[_selector].functionSelectorPosition;
        uint256 lastSelectorPosition = selectors.length - 1;
        if (selectorPosition != lastSelectorPosition) {
            bytes4 lastSelector = selectors[lastSelectorPosition];
            selectors[selectorPosition] = lastSelector;
            // casting to 'uint96' is safe because the position was stored as a uint96 when the selector was added
            // forge-lint: disable-next-line(unsafe-typecast)
            l.selectorToFacetAndPosition[lastSelector].functionSelectorPosition = uint96(selectorPosition);
        }
        selectors.pop();
        delete l.selectorToFacetAndPosition[_selector];

        if (lastSelectorPosition == 0) {
            uint256 lastFacetAddressPosition = l.facetAddresses.length - 1;
            uint256 facetAddressPosition = l.facetFunctionSelectors[_facetAddress].facetAddressPosition;
            if (facetAddressPosition != lastFacetAddressPosition) {
                address lastFacetAddress = l.facetAddresses[lastFacetAddressPosition];
                l.facetAddresses[facetAddressPosition] = lastFacetAddress;
                l.facetFunctionSelectors[lastFacetAddress].facetAddressPosition = facetAddressPosition;
            }
            l.facetAddresses.pop();
            delete l.facetFunctionSelectors[_facetAddress].facetAddressPosition;
        }
    }

    function initializeDiamondCut(address _init, bytes memory _calldata) internal {
        if (_init == address(0)) return;
        enforceHasContractCode(_init, "LibDiamond: _init address has no code");
        (bool success, bytes memory returndata) = _init.delegatecall(_calldata);
        if (!success) {
            if (returndata.length > 0) {
                assembly {
                    revert(add(32, returndata), mload(returndata))
                }
            }
            revert IDiamondCut.InitializationFunctionReverted(_init, _calldata);
        }
    }

    function enforceHasContractCode(address _contract, string memory _errorMessage) internal view {
        if (_contract.code.length == 0) revert IDiamondCut.NoBytecodeAtAddress(_contract, _errorMessage);
    }
}
