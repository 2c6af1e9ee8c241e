// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IVRFCoordinatorV2Plus, VRFV2PlusClient} from "../../src/randomness/VrfRandomness.sol";

/// @notice The consumer callback the coordinator calls (Chainlink's `VRFConsumerBaseV2Plus`).
interface IVRFConsumerV2Plus {
    function rawFulfillRandomWords(uint256 requestId, uint256[] calldata randomWords) external;
}

/// @notice A local stand-in for Chainlink's VRF v2.5 coordinator: the same `requestRandomWords` (with the
/// same checks on the request: an existing subscription listing the caller, confirmations within bounds,
/// callback gas and word count within bounds, V1-tagged extra args), the same `RandomWordsRequested` event and
/// request id derivation, and a test hook `fulfillRandomWords(requestId, consumer)` that answers like
/// Chainlink's own mock: word i is `uint256(keccak256(abi.encode(requestId, i)))`, delivered with the
/// request's gas limit; a reverting callback is recorded (`success` false), not bubbled, as on chain.
contract VRFCoordinatorV2_5Mock is IVRFCoordinatorV2Plus {
    uint16 public constant MINIMUM_REQUEST_CONFIRMATIONS = 3;
    uint16 public constant MAX_REQUEST_CONFIRMATIONS = 200;
    uint32 public constant MAX_NUM_WORDS = 500;
    uint32 public constant MAX_GAS_LIMIT = 2_500_000;

    error InvalidSubscription();
    error InvalidConsumer(uint256 subId, address consumer);
    error InvalidRequestConfirmations(uint16 have, uint16 min, uint16 max);
    error GasLimitTooBig(uint32 have, uint32 want);
    error NumWordsTooBig(uint32 have, uint32 want);
    error InvalidExtraArgsTag();
    error NoCorrespondingRequest();
    error InvalidConsumerForRequest(address consumer);

    event SubscriptionCreated(uint256 indexed subId, address owner);
    event SubscriptionConsumerAdded(uint256 indexed subId, address consumer);
    event RandomWordsRequested(
        bytes32 indexed keyHash,
        uint256 requestId,
        uint256 preSeed,
        uint256 indexed subId,
        uint16 minimumRequestConfirmations,
        uint32 callbackGasLimit,
        uint32 numWords,
        bytes extraArgs,
        address indexed sender
    );
    event RandomWordsFulfilled(
        uint256 indexed requestId,
        uint256 outputSeed,
        uint256 indexed subId,
        uint96 payment,
        bool nativePayment,
        bool success,
        bool onlyPremium
    );

    struct Pending {
        address consumer;
        uint256 subId;
        uint32 callbackGasLimit;
        uint32 numWords;
        bool nativePayment;
    }

    uint256 private subCount;
    mapping(uint256 subId => address) public subscriptionOwner;
    mapping(uint256 subId => mapping(address consumer => uint64 nonce)) private consumers; // nonce + 1 once added
    mapping(uint256 requestId => Pending) public pendingRequests;

    /// @notice A new subscription owned by the caller (ids derived as on chain: unpredictable, non-zero).
    function createSubscription() external returns (uint256 subId) {
        subId = uint256(
            keccak256(abi.encodePacked(msg.sender, blockhash(block.number - 1), address(this), ++subCount))
        );
        subscriptionOwner[subId] = msg.sender;
        emit SubscriptionCreated(subId, msg.sender);
    }

    function addConsumer(uint256 subId, address consumer) external {
        if (subscriptionOwner[subId] == address(0)) revert InvalidSubscription();
        if (consumers[subId][consumer] == 0) consumers[subId][consumer] = 1;
        emit SubscriptionConsumerAdded(subId, consumer);
    }

    /// @inheritdoc IVRFCoordinatorV2Plus
    function requestRandomWords(VRFV2PlusClient.RandomWordsRequest calldata req)
        external
        returns (uint256 requestId)
    {
        if (subscriptionOwner[req.subId] == address(0)) revert InvalidSubscription();
        uint64 nonce = consumers[req.subId][msg.sender];
        if (nonce == 0) revert InvalidConsumer(req.subId, msg.sender);
        if (
            req.requestConfirmations < MINIMUM_REQUEST_CONFIRMATIONS
                || req.requestConfirmations > MAX_REQUEST_CONFIRMATIONS
        ) {
            revert InvalidRequestConfirmations(
                req.requestConfirmations, MINIMUM_REQUEST_CONFIRMATIONS, MAX_REQUEST_CONFIRMATIONS
            );
        }
        if (req.callbackGasLimit > MAX_GAS_LIMIT) revert GasLimitTooBig(req.callbackGasLimit, MAX_GAS_LIMIT);
        if (req.numWords > MAX_NUM_WORDS) revert NumWordsTooBig(req.numWords, MAX_NUM_WORDS);
        bool nativePayment = this.decodeExtraArgs(req.extraArgs).nativePayment;

        consumers[req.subId][msg.sender] = nonce + 1;
        uint256 preSeed = uint256(keccak256(abi.encode(req.keyHash, msg.sender, req.subId, nonce)));
        requestId = uint256(keccak256(abi.encode(req.keyHash, preSeed)));
        pendingRequests[requestId] = Pending({
            consumer: msg.sender,
            subId: req.subId,
            callbackGasLimit: req.callbackGasLimit,
            numWords: req.numWords,
            nativePayment: nativePayment
        });
        emit RandomWordsRequested(
            req.keyHash,
            requestId,
            preSeed,
            req.subId,
            req.requestConfirmations,
            req.callbackGasLimit,
            req.numWords,
            req.extraArgs,
            msg.sender
        );
    }

    /// @notice The coordinator's `_fromBytes`: empty means LINK payment; anything else must carry the V1 tag.
    function decodeExtraArgs(bytes calldata extraArgs)
        external
        pure
        returns (VRFV2PlusClient.ExtraArgsV1 memory)
    {
        if (extraArgs.length == 0) return VRFV2PlusClient.ExtraArgsV1({nativePayment: false});
        if (bytes4(extraArgs) != VRFV2PlusClient.EXTRA_ARGS_V1_TAG) revert InvalidExtraArgsTag();
        return abi.decode(extraArgs[4:], (VRFV2PlusClient.ExtraArgsV1));
    }

    /// @notice Test hook: answers `requestId` to `consumer` with words derived from the request id.
    /// @return success Whether the consumer's callback succeeded.
    function fulfillRandomWords(uint256 requestId, address consumer) external returns (bool success) {
        Pending memory p = pendingRequests[requestId];
        if (p.consumer == address(0)) revert NoCorrespondingRequest();
        if (p.consumer != consumer) revert InvalidConsumerForRequest(consumer);
        uint256[] memory words = new uint256[](p.numWords);
        for (uint256 i; i < words.length; ++i) {
            words[i] = uint256(keccak256(abi.encode(requestId, i)));
        }
        delete pendingRequests[requestId];
        (success,) = consumer.call{gas: p.callbackGasLimit}(
            abi.encodeCall(IVRFConsumerV2Plus.rawFulfillRandomWords, (requestId, words))
        );
        emit RandomWordsFulfilled(requestId, requestId, p.subId, 0, p.nativePayment, success, false);
    }
}
