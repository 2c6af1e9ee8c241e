// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title Models and their rate cards. `modelId = keccak256(abi.encode(name, weightsHash))`.
/// @dev Rates are in AIPG wei: per 1,000,000 input / output tokens for text, per megapixel-step for images.
interface IModelRegistry {
    enum ModelKind {
        Text,
        Image
    }

    struct RateCard {
        uint128 inputPerMTokens;
        uint128 outputPerMTokens;
        uint128 perMegapixelStep;
    }

    struct Model {
        bytes32 id;
        string name;
        ModelKind kind;
        bytes32 weightsHash; // sha256 of the GGUF / checkpoint file
        uint64 parameterCount;
        uint32 minVramMb;
        RateCard rates;
        bool active;
        // sha256 of the model's tokenizer file (its GGUF's metadata with no tensors; `extractTokenizerFile`
        // in @aipg/inference): what gateways load to tokenize prompts and render output text without the
        // weights. Never zero for a text model; image models may leave it zero. Last field: appending kept
        // the storage layout of models registered before it.
        bytes32 tokenizerHash;
    }

    event ModelRegistered(
        bytes32 indexed modelId, string name, ModelKind kind, bytes32 weightsHash, bytes32 tokenizerHash
    );
    event ModelRatesUpdated(bytes32 indexed modelId, RateCard rates);
    event ModelActiveSet(bytes32 indexed modelId, bool active);
    event ConfidentialPremiumUpdated(uint16 bps);

    error ModelExists(bytes32 modelId);
    error UnknownModel(bytes32 modelId);
    error EmptyName();
    error ZeroWeightsHash();
    error ZeroTokenizerHash();
    error InvalidRates();
    error PremiumTooHigh(uint16 bps, uint16 maximum);

    function registerModel(
        string calldata name,
        ModelKind kind,
        bytes32 weightsHash,
        bytes32 tokenizerHash,
        uint64 parameterCount,
        uint32 minVramMb,
        RateCard calldata rates
    ) external returns (bytes32 modelId);
    function setModelRates(bytes32 modelId, RateCard calldata rates) external;
    function setModelActive(bytes32 modelId, bool active) external;
    /// @notice Premium on confidential jobs in basis points (at most 10,000 = +100%).
    function setConfidentialPremium(uint16 bps) external;

    function getModel(bytes32 modelId) external view returns (Model memory);
    function modelIds() external view returns (bytes32[] memory);
    function confidentialPremiumBps() external view returns (uint16);
    function computeModelId(string calldata name, bytes32 weightsHash) external pure returns (bytes32);
}
