// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";
import {GridFixture} from "../utils/GridFixture.sol";
import {VRFCoordinatorV2_5Mock} from "../mocks/VRFCoordinatorV2_5Mock.sol";
import {IAudit} from "../../src/interfaces/IAudit.sol";
import {IGridInit} from "../../src/interfaces/IGridInit.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {VrfRandomness, VRFV2PlusClient} from "../../src/randomness/VrfRandomness.sol";

/// @notice The Chainlink VRF v2.5 adapter, against a coordinator mock with the real coordinator's checks, and as
/// the randomness source of a grid deployed with it.
contract VrfRandomnessTest is GridFixture {
    VRFCoordinatorV2_5Mock internal coordinator;
    VrfRandomness internal vrf;
    uint256 internal subId;

    bytes32 internal constant KEY_HASH = keccak256("base 30 gwei key");
    uint16 internal constant CONFIRMATIONS = 3;
    uint32 internal constant CALLBACK_GAS = 100_000;

    address internal worker = makeAddr("worker");
    address internal payer = makeAddr("payer");
    address internal gateway = makeAddr("gateway");
    address internal stranger = makeAddr("stranger");
    uint256 private roots;

    function setUp() public override {
        super.setUp();
        coordinator = new VRFCoordinatorV2_5Mock();
        subId = coordinator.createSubscription();
        // The diamond's init needs its randomness source, and the adapter needs the diamond: deploy the
        // adapter first, for the address the diamond will have.
        _deployFacets();
        address predicted = vm.computeCreateAddress(address(this), vm.getNonce(address(this)) + 1);
        vrf = new VrfRandomness(
            address(coordinator), predicted, KEY_HASH, subId, CONFIRMATIONS, CALLBACK_GAS, true
        );
        coordinator.addConsumer(subId, address(vrf));
        IGridInit.InitArgs memory args = _defaultInitArgs();
        args.randomnessSource = address(vrf);
        grid = _deployDiamond(args);
        assertEq(address(grid), predicted, "diamond at the predicted address");
        assertEq(grid.randomnessSource(), address(vrf));

        _bondWorker(worker, WORKER_MIN);
        _fund(payer, 1_000e18);
        vm.startPrank(payer);
        grid.deposit(1_000e18);
        grid.increaseGatewayCap(gateway, type(uint256).max);
        vm.stopPrank();
    }

    /// @dev The gateway settles one receipt's worth (1 AIPG) under a fresh root.
    function _settle() internal returns (uint256 batchId) {
        IPayments.PayerDebit[] memory debits = new IPayments.PayerDebit[](1);
        debits[0] = IPayments.PayerDebit({payer: payer, amount: 1e18});
        IPayments.WorkerCredit[] memory credits = new IPayments.WorkerCredit[](1);
        credits[0] = IPayments.WorkerCredit({worker: worker, gross: 1e18});
        uint64 firstSeq = grid.nextReceiptSeq(gateway);
        vm.prank(gateway);
        batchId = grid.settle(keccak256(abi.encode("root", ++roots)), firstSeq, 1, debits, credits);
    }

    function _request(uint256 batchId) internal returns (uint256 requestId) {
        vm.prank(stranger);
        requestId = vrf.request(batchId);
    }

    function _fulfil(uint256 requestId) internal {
        vm.roll(block.number + CONFIRMATIONS);
        assertTrue(coordinator.fulfillRandomWords(requestId, address(vrf)), "callback succeeded");
    }

    function _expected(uint256 requestId, uint256 batchId) internal pure returns (bytes32) {
        uint256 word = uint256(keccak256(abi.encode(requestId, uint256(0))));
        return keccak256(abi.encode(word, batchId));
    }

    // ---------------------------------------------------------------- construction

    function test_constructor_storesConfig() public view {
        assertEq(address(vrf.coordinator()), address(coordinator));
        assertEq(address(vrf.diamond()), address(grid));
        assertEq(vrf.keyHash(), KEY_HASH);
        assertEq(vrf.subId(), subId);
        assertEq(vrf.requestConfirmations(), CONFIRMATIONS);
        assertEq(vrf.callbackGasLimit(), CALLBACK_GAS);
        assertTrue(vrf.nativePayment());
    }

    function test_constructor_revertsOnZeroConfig() public {
        vm.expectRevert(abi.encodeWithSelector(VrfRandomness.InvalidConfig.selector, "coordinator"));
        new VrfRandomness(address(0), address(grid), KEY_HASH, subId, CONFIRMATIONS, CALLBACK_GAS, true);
        vm.expectRevert(abi.encodeWithSelector(VrfRandomness.InvalidConfig.selector, "diamond"));
        new VrfRandomness(
            address(coordinator), address(0), KEY_HASH, subId, CONFIRMATIONS, CALLBACK_GAS, true
        );
        vm.expectRevert(abi.encodeWithSelector(VrfRandomness.InvalidConfig.selector, "keyHash"));
        new VrfRandomness(address(coordinator), address(grid), 0, subId, CONFIRMATIONS, CALLBACK_GAS, true);
        vm.expectRevert(abi.encodeWithSelector(VrfRandomness.InvalidConfig.selector, "callbackGasLimit"));
        new VrfRandomness(address(coordinator), address(grid), KEY_HASH, subId, CONFIRMATIONS, 0, true);
    }

    // ---------------------------------------------------------------- request

    function test_request_sendsTheV25RequestTheCoordinatorExpects() public {
        uint256 batchId = _settle();
        bytes memory extraArgs =
            abi.encodeWithSelector(bytes4(keccak256("VRF ExtraArgsV1")), VRFV2PlusClient.ExtraArgsV1(true));
        vm.expectCall(
            address(coordinator),
            abi.encodeCall(
                coordinator.requestRandomWords,
                (VRFV2PlusClient.RandomWordsRequest(
                        KEY_HASH, subId, CONFIRMATIONS, CALLBACK_GAS, 1, extraArgs
                    ))
            )
        );
        vm.recordLogs();
        uint256 requestId = _request(batchId);

        Vm.Log[] memory logs = vm.getRecordedLogs();
        bool requested;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(coordinator)) continue;
            if (logs[i].topics[0] != VRFCoordinatorV2_5Mock.RandomWordsRequested.selector) continue;
            (uint256 id,, uint16 confirmations, uint32 gasLimit, uint32 numWords, bytes memory args) =
                abi.decode(logs[i].data, (uint256, uint256, uint16, uint32, uint32, bytes));
            assertEq(logs[i].topics[1], KEY_HASH);
            assertEq(uint256(logs[i].topics[2]), subId);
            assertEq(address(uint160(uint256(logs[i].topics[3]))), address(vrf));
            assertEq(id, requestId);
            assertEq(confirmations, CONFIRMATIONS);
            assertEq(gasLimit, CALLBACK_GAS);
            assertEq(numWords, 1);
            assertEq(args, extraArgs);
            requested = true;
        }
        assertTrue(requested, "RandomWordsRequested emitted");
        assertTrue(coordinator.decodeExtraArgs(extraArgs).nativePayment);
        (bool isRequested, uint256 storedId, bool fulfilled) = vrf.requestOf(batchId);
        assertTrue(isRequested);
        assertEq(storedId, requestId);
        assertFalse(fulfilled);
    }

    function test_request_emitsRandomnessRequested() public {
        uint256 batchId = _settle();
        uint64 settledBlock = grid.getBatch(batchId).settledBlock;
        vm.expectEmit(true, false, false, false, address(vrf));
        emit VrfRandomness.RandomnessRequested(batchId, 0, settledBlock);
        _request(batchId);
    }

    function test_request_revertsWhenBatchUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(VrfRandomness.UnknownBatch.selector, 1));
        vrf.request(1);
        uint256 batchId = _settle();
        vm.expectRevert(abi.encodeWithSelector(VrfRandomness.UnknownBatch.selector, batchId + 1));
        vrf.request(batchId + 1);
    }

    function test_request_revertsWhenAlreadyRequested() public {
        uint256 batchId = _settle();
        uint256 requestId = _request(batchId);
        vm.expectRevert(abi.encodeWithSelector(VrfRandomness.AlreadyRequested.selector, batchId, requestId));
        vrf.request(batchId);
        // nor once answered: nobody can ask for another word
        _fulfil(requestId);
        vm.expectRevert(abi.encodeWithSelector(VrfRandomness.AlreadyRequested.selector, batchId, requestId));
        vrf.request(batchId);
    }

    function test_request_revertsWhenNotAConsumerOfTheSubscription() public {
        VrfRandomness other = new VrfRandomness(
            address(coordinator), address(grid), KEY_HASH, subId, CONFIRMATIONS, CALLBACK_GAS, false
        );
        uint256 batchId = _settle();
        vm.expectRevert(
            abi.encodeWithSelector(VRFCoordinatorV2_5Mock.InvalidConsumer.selector, subId, address(other))
        );
        other.request(batchId);
        // the failed request left nothing behind: once added, it can request
        coordinator.addConsumer(subId, address(other));
        other.request(batchId);
    }

    // ---------------------------------------------------------------- fulfilment and randomness

    function test_randomness_notReadyBeforeFulfilment() public {
        uint256 batchId = _settle();
        (bool ready, bytes32 value) = vrf.randomness(batchId, uint64(block.number), RANDOMNESS_DELAY);
        assertFalse(ready);
        assertEq(value, bytes32(0));
        _request(batchId);
        vm.roll(block.number + 100);
        (ready, value) = vrf.randomness(batchId, uint64(block.number), RANDOMNESS_DELAY);
        assertFalse(ready, "not ready while the request is unanswered");
        assertEq(value, bytes32(0));
    }

    function test_randomness_readyAfterFulfilment() public {
        uint256 batchId = _settle();
        uint256 requestId = _request(batchId);
        vm.expectEmit(true, true, false, true, address(vrf));
        emit VrfRandomness.RandomnessFulfilled(batchId, requestId, _expected(requestId, batchId));
        _fulfil(requestId);
        (bool ready, bytes32 value) = vrf.randomness(batchId, 0, 0);
        assertTrue(ready);
        assertEq(value, _expected(requestId, batchId));
        (,, bool fulfilled) = vrf.requestOf(batchId);
        assertTrue(fulfilled);
    }

    function test_randomness_isBoundToTheBatchId() public {
        uint256 first = _settle();
        uint256 second = _settle();
        uint256 firstRequest = _request(first);
        uint256 secondRequest = _request(second);
        _fulfil(firstRequest);
        _fulfil(secondRequest);
        (, bytes32 a) = vrf.randomness(first, 0, 0);
        (, bytes32 b) = vrf.randomness(second, 0, 0);
        assertEq(a, _expected(firstRequest, first));
        assertEq(b, _expected(secondRequest, second));
        assertNotEq(a, b);
        // the same word under another batch id gives another value: a word is never reused across batches
        uint256 word = uint256(keccak256(abi.encode(firstRequest, uint256(0))));
        assertNotEq(a, keccak256(abi.encode(word, second)));
        // settledBlock and delay are ignored: the request is the schedule
        (, bytes32 again) = vrf.randomness(first, 12345, 678);
        assertEq(again, a);
    }

    function test_rawFulfillRandomWords_revertsWhenNotCoordinator() public {
        uint256 batchId = _settle();
        uint256 requestId = _request(batchId);
        uint256[] memory words = new uint256[](1);
        words[0] = 42;
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(
                VrfRandomness.OnlyCoordinatorCanFulfill.selector, stranger, address(coordinator)
            )
        );
        vrf.rawFulfillRandomWords(requestId, words);
        (bool ready,) = vrf.randomness(batchId, 0, 0);
        assertFalse(ready);
    }

    function test_rawFulfillRandomWords_revertsWhenRequestUnknownOrAnswered() public {
        uint256[] memory words = new uint256[](1);
        words[0] = 42;
        vm.prank(address(coordinator));
        vm.expectRevert(abi.encodeWithSelector(VrfRandomness.UnknownRequest.selector, 7));
        vrf.rawFulfillRandomWords(7, words);

        uint256 batchId = _settle();
        uint256 requestId = _request(batchId);
        _fulfil(requestId);
        // a second answer cannot overwrite the first
        vm.prank(address(coordinator));
        vm.expectRevert(abi.encodeWithSelector(VrfRandomness.UnknownRequest.selector, requestId));
        vrf.rawFulfillRandomWords(requestId, words);
        (, bytes32 value) = vrf.randomness(batchId, 0, 0);
        assertEq(value, _expected(requestId, batchId));
    }

    function test_rawFulfillRandomWords_revertsWhenNoWords() public {
        uint256 batchId = _settle();
        uint256 requestId = _request(batchId);
        vm.prank(address(coordinator));
        vm.expectRevert(abi.encodeWithSelector(VrfRandomness.NoRandomWords.selector, requestId));
        vrf.rawFulfillRandomWords(requestId, new uint256[](0));
    }

    // ---------------------------------------------------------------- as the grid's source

    function test_fixRandomness_revertsBeforeFulfilment() public {
        uint256 batchId = _settle();
        vm.roll(block.number + RANDOMNESS_DELAY + 1);
        vm.expectRevert(abi.encodeWithSelector(IAudit.RandomnessNotReady.selector, batchId));
        grid.fixRandomness(batchId);
        uint256 requestId = _request(batchId);
        vm.roll(block.number + CONFIRMATIONS);
        vm.expectRevert(abi.encodeWithSelector(IAudit.RandomnessNotReady.selector, batchId));
        grid.fixRandomness(batchId);
        assertTrue(requestId != 0);
    }

    function test_fixRandomness_usesTheVrfWordAfterFulfilment() public {
        uint256 batchId = _settle();
        uint256 requestId = _request(batchId);
        _fulfil(requestId);
        grid.fixRandomness(batchId);
        IAudit.BatchAudit memory audit = grid.batchAudit(batchId);
        assertEq(audit.randomness, _expected(requestId, batchId));
        assertEq(audit.fixedAt, block.timestamp);
        assertEq(audit.deadline, block.timestamp + COMMIT_WINDOW);
        assertEq(audit.revealDeadline, block.timestamp + COMMIT_WINDOW + REVEAL_WINDOW);
    }
}
