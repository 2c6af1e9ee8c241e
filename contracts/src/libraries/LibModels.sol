// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IModelRegistry} from "../interfaces/IModelRegistry.sol";

/// @title Model registry storage and rules.
library LibModels {
    uint16 internal constant MAX_PREMIUM_BPS = 10_000;

    /// @custom:storage-location erc7201:aipg.storage.Models
    struct Layout {
        mapping(bytes32 modelId => IModelRegistry.Model) models;
        bytes32[] modelIds;
        uint16 confidentialPremiumBps;
    }

    // keccak256(abi.encode(uint256(keccak256("aipg.storage.Models")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant STORAGE_SLOT =
        0xfabe94ff247c0bae4a5a4a20fe1ce572627a2410c06416b85306d8064b1d7500;

    function layout() internal pure returns (Layout storage l) {
        bytes32 slot = STORAGE_SLOT;
        assembly {
            l.slot := slot
        }
    }

    function computeModelId(string memory name, bytes32 weightsHash) internal pure returns (bytes32) {
        return keccak256(abi.encode(name, weightsHash));
    }

    /// @dev Text models price input and output tokens, image models megapixel-steps; both must be > 0.
    function validateRates(IModelRegistry.ModelKind kind, IModelRegistry.RateCard memory rates)
        internal
        pure
    {
        bool ok = kind == IModelRegistry.ModelKind.Text
            ? rates.inputPerMTokens != 0 && rates.outputPerMTokens != 0
            : rates.perMegapixelStep != 0;
        if (!ok) revert IModelRegistry.InvalidRates();
    }

    function setConfidentialPremium(uint16 bps) internal {
        if (bps > MAX_PREMIUM_BPS) revert IModelRegistry.PremiumTooHigh(bps, MAX_PREMIUM_BPS);
        layout().confidentialPremiumBps = bps;
        emit IModelRegistry.ConfidentialPremiumUpdated(bps);
    }

    /// @dev The stored model; reverts `UnknownModel` if it was never registered.
    function get(bytes32 modelId) internal view returns (IModelRegistry.Model storage m) {
        m = layout().models[modelId];
        if (m.id == bytes32(0)) revert IModelRegistry.UnknownModel(modelId);
    }
}
