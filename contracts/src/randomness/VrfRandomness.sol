// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IRandomnessSource} from "../interfaces/IAudit.sol";
import {IPayments} from "../interfaces/IPayments.sol";

/// @title The request types of Chainlink VRF v2.5 (`VRFV2PlusClient`), restated so that nothing of Chainlink's
/// package is needed: the encoding is what the v2.5 coordinator decodes.
library VRFV2PlusClient {
    /// @notice `bytes4(keccak256("VRF ExtraArgsV1"))`: the tag the coordinator expects in front of `ExtraArgsV1`.
    bytes4 internal constant EXTRA_ARGS_V1_TAG = bytes4(keccak256("VRF ExtraArgsV1"));

    struct ExtraArgsV1 {
        bool nativePayment; // pay the request in the chain's native token (true) or in LINK (false)
    }

    struct RandomWordsRequest {
        bytes32 keyHash; // the VRF key (gas lane) that answers
        uint256 subId; // the subscription that pays; this contract must be one of its consumers
        uint16 requestConfirmations; // blocks the coordinator waits before it answers
        uint32 callbackGasLimit; // gas for `rawFulfillRandomWords`
        uint32 numWords;
        bytes extraArgs; // `argsToBytes(ExtraArgsV1)`
    }

    /// @notice `extraArgs` as the coordinator decodes them: the V1 tag, then the ABI-encoded struct.
    function argsToBytes(ExtraArgsV1 memory extraArgs) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(EXTRA_ARGS_V1_TAG, extraArgs);
    }
}

/// @title The one function of Chainlink's VRF v2.5 coordinator (`IVRFCoordinatorV2Plus`) a consumer calls.
interface IVRFCoordinatorV2Plus {
    /// @notice Requests `req.numWords` random words; the coordinator later calls the requester's
    /// `rawFulfillRandomWords(requestId, randomWords)`.
    function requestRandomWords(VRFV2PlusClient.RandomWordsRequest calldata req)
        external
        returns (uint256 requestId);
}

/// @title Audit randomness from Chainlink VRF v2.5: the source for Base.
/// @notice Once a batch is settled, anyone calls `request(batchId)` (once per batch); the coordinator answers
/// `rawFulfillRandomWords` after `requestConfirmations` blocks with a word that is verifiably random and known
/// to nobody before (not the gateway that settled, not Base's sequencer, not the VRF node, which can only
/// answer the one value its key proves). From then on `randomness` returns
/// `keccak256(abi.encode(word, batchId))` and anyone can `fixRandomness` on the diamond.
/// @dev Every request is paid from subscription `subId`, which must list this contract as a consumer and stay
/// funded: a request the coordinator cannot pay is never answered, and that batch is never audited. Requests
/// cost a settled batch each (one per batch, and a batch needs a non-zero fee), so nobody can drain the
/// subscription for free. A batch cannot be requested twice, so nobody (the VRF operator included) can pick
/// among answers by asking again. `delay` of `randomness` is ignored: the coordinator's confirmations are the
/// delay. Nothing here is owned or upgradable; to change any setting, deploy another adapter and announce it
/// on the diamond (`announceRandomnessSource`).
contract VrfRandomness is IRandomnessSource {
    /// @notice The batch is not settled on the diamond (or does not exist).
    error UnknownBatch(uint256 batchId);
    /// @notice `request` was already called for this batch.
    error AlreadyRequested(uint256 batchId, uint256 requestId);
    /// @notice Only the coordinator answers requests (Chainlink's `VRFConsumerBaseV2Plus` error).
    error OnlyCoordinatorCanFulfill(address have, address want);
    /// @notice The coordinator answered a request this contract did not make, or one already answered.
    error UnknownRequest(uint256 requestId);
    /// @notice The coordinator answered with no word.
    error NoRandomWords(uint256 requestId);
    /// @notice A constructor argument is zero (`coordinator`, `diamond`, `keyHash`, `callbackGasLimit`).
    error InvalidConfig(string field);

    /// @notice `request(batchId)` asked the coordinator for a word.
    event RandomnessRequested(uint256 indexed batchId, uint256 indexed requestId, uint64 settledBlock);
    /// @notice The coordinator answered: `randomness(batchId, …)` is ready with `value`.
    event RandomnessFulfilled(uint256 indexed batchId, uint256 indexed requestId, bytes32 value);

    struct Request {
        bool requested;
        uint256 requestId; // the coordinator's id
        bytes32 value; // keccak256(abi.encode(word, batchId)); 0 until answered
    }

    /// @notice The Chainlink VRF v2.5 coordinator that answers.
    IVRFCoordinatorV2Plus public immutable coordinator;
    /// @notice The Grid diamond whose batches this serves (read with `IPayments.getBatch`).
    IPayments public immutable diamond;
    /// @notice The VRF key (gas lane).
    bytes32 public immutable keyHash;
    /// @notice The subscription that pays every request.
    uint256 public immutable subId;
    /// @notice Blocks the coordinator waits after a request before answering.
    uint16 public immutable requestConfirmations;
    /// @notice Gas the coordinator gives `rawFulfillRandomWords`.
    uint32 public immutable callbackGasLimit;
    /// @notice Whether requests are paid in the native token (else in LINK).
    bool public immutable nativePayment;

    mapping(uint256 batchId => Request) private requests;
    // requestId => batchId + 1 while unanswered (0: not ours, or answered)
    mapping(uint256 requestId => uint256) private pending;

    /// @param coordinator_ The VRF v2.5 coordinator on this chain.
    /// @param diamond_ The Grid diamond (it may not exist yet: deployGrid deploys this adapter first, at the
    /// diamond's predicted address, because the diamond's init needs its randomness source).
    /// @param keyHash_ The VRF key hash (gas lane) of this chain.
    /// @param subId_ The funded subscription; add this contract as its consumer before the first request.
    /// @param requestConfirmations_ At least the coordinator's minimum (it reverts below it).
    /// @param callbackGasLimit_ Gas for the answer; `rawFulfillRandomWords` needs about 50,000.
    /// @param nativePayment_ Pay in ETH (true) or LINK (false).
    constructor(
        address coordinator_,
        address diamond_,
        bytes32 keyHash_,
        uint256 subId_,
        uint16 requestConfirmations_,
        uint32 callbackGasLimit_,
        bool nativePayment_
    ) {
        if (coordinator_ == address(0)) revert InvalidConfig("coordinator");
        if (diamond_ == address(0)) revert InvalidConfig("diamond");
        if (keyHash_ == bytes32(0)) revert InvalidConfig("keyHash");
        if (callbackGasLimit_ == 0) revert InvalidConfig("callbackGasLimit");
        coordinator = IVRFCoordinatorV2Plus(coordinator_);
        diamond = IPayments(diamond_);
        keyHash = keyHash_;
        subId = subId_;
        requestConfirmations = requestConfirmations_;
        callbackGasLimit = callbackGasLimit_;
        nativePayment = nativePayment_;
    }

    /// @notice Asks the coordinator for the randomness of a settled batch. Anyone may call it, once per batch.
    /// @dev Reverts `UnknownBatch` when the diamond has no such batch, `AlreadyRequested` on a second call;
    /// the coordinator reverts when the subscription does not list this contract or the settings are out of
    /// its bounds.
    /// @param batchId The diamond's batch id.
    /// @return requestId The coordinator's request id.
    function request(uint256 batchId) external returns (uint256 requestId) {
        Request storage r = requests[batchId];
        if (r.requested) revert AlreadyRequested(batchId, r.requestId);
        IPayments.Batch memory batch = diamond.getBatch(batchId);
        if (batch.root == bytes32(0)) revert UnknownBatch(batchId);
        r.requested = true;
        requestId = coordinator.requestRandomWords(
            VRFV2PlusClient.RandomWordsRequest({
                keyHash: keyHash,
                subId: subId,
                requestConfirmations: requestConfirmations,
                callbackGasLimit: callbackGasLimit,
                numWords: 1,
                extraArgs: VRFV2PlusClient.argsToBytes(
                    VRFV2PlusClient.ExtraArgsV1({nativePayment: nativePayment})
                )
            })
        );
        r.requestId = requestId;
        pending[requestId] = batchId + 1;
        emit RandomnessRequested(batchId, requestId, batch.settledBlock);
    }

    /// @notice The coordinator's answer to a request (the v2.5 consumer callback).
    /// @dev Reverts `OnlyCoordinatorCanFulfill` for any other caller, `UnknownRequest` for a request that is
    /// not pending here, `NoRandomWords` for an empty answer. Only the first word is used.
    /// @param requestId The id `requestRandomWords` returned.
    /// @param randomWords The words (one was asked for).
    function rawFulfillRandomWords(uint256 requestId, uint256[] calldata randomWords) external {
        if (msg.sender != address(coordinator)) {
            revert OnlyCoordinatorCanFulfill(msg.sender, address(coordinator));
        }
        uint256 entry = pending[requestId];
        if (entry == 0) revert UnknownRequest(requestId);
        if (randomWords.length == 0) revert NoRandomWords(requestId);
        delete pending[requestId];
        // Cannot underflow: entry is batchId + 1 >= 1.
        uint256 batchId;
        unchecked {
            batchId = entry - 1;
        }
        bytes32 value = keccak256(abi.encode(randomWords[0], batchId));
        requests[batchId].value = value;
        emit RandomnessFulfilled(batchId, requestId, value);
    }

    /// @inheritdoc IRandomnessSource
    /// @dev `(true, keccak256(abi.encode(word, batchId)))` once the coordinator answered this batch's request,
    /// else `(false, 0)`. `settledBlock` and `delay` are ignored: the request is only possible after
    /// settlement, and the coordinator's confirmations are the delay.
    function randomness(uint256 batchId, uint64, uint64) external view returns (bool ready, bytes32 value) {
        value = requests[batchId].value;
        ready = value != bytes32(0);
    }

    /// @notice Whether `batchId` was requested, the coordinator's request id and whether it was answered.
    function requestOf(uint256 batchId)
        external
        view
        returns (bool requested, uint256 requestId, bool fulfilled)
    {
        Request storage r = requests[batchId];
        return (r.requested, r.requestId, r.value != bytes32(0));
    }
}
