// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IModelRegistry} from "../interfaces/IModelRegistry.sol";
import {LibDiamond} from "../libraries/LibDiamond.sol";
import {LibModels} from "../libraries/LibModels.sol";

/// @title Models and their rate cards; writes are owner only (a timelock in production).
contract ModelRegistryFacet is IModelRegistry {
    /// @notice Registers a model, active from the start. Its tokenizer hash can never change afterwards:
    /// the tokenizer is part of the model's identity, since gateways render output text with it.
    /// @dev Owner only. Reverts `EmptyName`, `ZeroWeightsHash`, `ZeroTokenizerHash` (a text model without
    /// one), `InvalidRates` or `ModelExists`.
    /// @return modelId `keccak256(abi.encode(name, weightsHash))`.
    function registerModel(
        string calldata name,
        ModelKind kind,
        bytes32 weightsHash,
        bytes32 tokenizerHash,
        uint64 parameterCount,
        uint32 minVramMb,
        RateCard calldata rates
    ) external returns (bytes32 modelId) {
        LibDiamond.enforceIsContractOwner();
        if (bytes(name).length == 0) revert EmptyName();
        if (weightsHash == bytes32(0)) revert ZeroWeightsHash();
        if (kind == ModelKind.Text && tokenizerHash == bytes32(0)) revert ZeroTokenizerHash();
        LibModels.validateRates(kind, rates);
        modelId = LibModels.computeModelId(name, weightsHash);
        LibModels.Layout storage l = LibModels.layout();
        Model storage m = l.models[modelId];
        if (m.id != bytes32(0)) revert ModelExists(modelId);

        m.id = modelId;
        m.name = name;
        m.kind = kind;
        m.weightsHash = weightsHash;
        m.parameterCount = parameterCount;
        m.minVramMb = minVramMb;
        m.rates = rates;
        m.active = true;
        m.tokenizerHash = tokenizerHash;
        l.modelIds.push(modelId);
        emit ModelRegistered(modelId, name, kind, weightsHash, tokenizerHash);
    }

    /// @notice Replaces a model's rate card.
    /// @dev Owner only. Reverts `UnknownModel` or `InvalidRates`.
    function setModelRates(bytes32 modelId, RateCard calldata rates) external {
        LibDiamond.enforceIsContractOwner();
        Model storage m = LibModels.get(modelId);
        LibModels.validateRates(m.kind, rates);
        m.rates = rates;
        emit ModelRatesUpdated(modelId, rates);
    }

    /// @notice Turns a model on or off for new jobs.
    /// @dev Owner only. Reverts `UnknownModel`.
    function setModelActive(bytes32 modelId, bool active) external {
        LibDiamond.enforceIsContractOwner();
        Model storage m = LibModels.get(modelId);
        m.active = active;
        emit ModelActiveSet(modelId, active);
    }

    /// @inheritdoc IModelRegistry
    /// @dev Owner only. Reverts `PremiumTooHigh` above 10,000.
    function setConfidentialPremium(uint16 bps) external {
        LibDiamond.enforceIsContractOwner();
        LibModels.setConfidentialPremium(bps);
    }

    /// @notice A registered model. Reverts `UnknownModel` for an id never registered.
    function getModel(bytes32 modelId) external view returns (Model memory) {
        return LibModels.get(modelId);
    }

    /// @notice Every registered model id, in registration order (inactive ones included).
    function modelIds() external view returns (bytes32[] memory) {
        return LibModels.layout().modelIds;
    }

    /// @notice Premium on confidential jobs in basis points.
    function confidentialPremiumBps() external view returns (uint16) {
        return LibModels.layout().confidentialPremiumBps;
    }

    /// @notice `keccak256(abi.encode(name, weightsHash))`.
    function computeModelId(string calldata name, bytes32 weightsHash) external pure returns (bytes32) {
        return LibModels.computeModelId(name, weightsHash);
    }
}
