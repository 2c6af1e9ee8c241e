// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {GridFixture} from "../utils/GridFixture.sol";
import {IModelRegistry} from "../../src/interfaces/IModelRegistry.sol";
import {IERC173} from "../../src/interfaces/IERC173.sol";

/// @notice Models, rate cards and the confidential premium.
contract ModelRegistryFacetTest is GridFixture {
    address internal stranger = makeAddr("stranger");
    bytes32 internal constant WEIGHTS = keccak256("weights");
    bytes32 internal constant TOKENIZER = keccak256("tokenizer");

    function _textRates() internal pure returns (IModelRegistry.RateCard memory) {
        return IModelRegistry.RateCard({inputPerMTokens: 1e18, outputPerMTokens: 3e18, perMegapixelStep: 0});
    }

    function _imageRates() internal pure returns (IModelRegistry.RateCard memory) {
        return IModelRegistry.RateCard({inputPerMTokens: 0, outputPerMTokens: 0, perMegapixelStep: 2e15});
    }

    function _registerText(string memory name) internal returns (bytes32) {
        vm.prank(owner);
        return grid.registerModel(
            name, IModelRegistry.ModelKind.Text, WEIGHTS, TOKENIZER, 113_000, 512, _textRates()
        );
    }

    // ---------------------------------------------------------------- register

    function test_registerModel_storesEverything() public {
        bytes32 expected = keccak256(abi.encode("tiny-llama", WEIGHTS));
        vm.expectEmit(address(grid));
        emit IModelRegistry.ModelRegistered(
            expected, "tiny-llama", IModelRegistry.ModelKind.Text, WEIGHTS, TOKENIZER
        );
        bytes32 id = _registerText("tiny-llama");
        assertEq(id, expected);
        assertEq(grid.computeModelId("tiny-llama", WEIGHTS), expected);

        IModelRegistry.Model memory m = grid.getModel(id);
        assertEq(m.id, id);
        assertEq(m.name, "tiny-llama");
        assertEq(uint8(m.kind), uint8(IModelRegistry.ModelKind.Text));
        assertEq(m.weightsHash, WEIGHTS);
        assertEq(m.tokenizerHash, TOKENIZER);
        assertEq(m.parameterCount, 113_000);
        assertEq(m.minVramMb, 512);
        assertEq(m.rates.inputPerMTokens, 1e18);
        assertEq(m.rates.outputPerMTokens, 3e18);
        assertEq(m.rates.perMegapixelStep, 0);
        assertTrue(m.active);

        bytes32[] memory ids = grid.modelIds();
        assertEq(ids.length, 1);
        assertEq(ids[0], id);
    }

    function test_registerModel_image() public {
        vm.prank(owner);
        bytes32 id = grid.registerModel(
            "sd", IModelRegistry.ModelKind.Image, WEIGHTS, TOKENIZER, 1e9, 8_000, _imageRates()
        );
        assertEq(uint8(grid.getModel(id).kind), uint8(IModelRegistry.ModelKind.Image));
        assertEq(grid.getModel(id).rates.perMegapixelStep, 2e15);
        assertEq(grid.getModel(id).tokenizerHash, TOKENIZER);
    }

    /// Image models have no tokenizer: a zero hash is accepted and stored as is.
    function test_registerModel_imageWithoutTokenizer() public {
        bytes32 expected = keccak256(abi.encode("sd", WEIGHTS));
        vm.expectEmit(address(grid));
        emit IModelRegistry.ModelRegistered(
            expected, "sd", IModelRegistry.ModelKind.Image, WEIGHTS, bytes32(0)
        );
        vm.prank(owner);
        bytes32 id = grid.registerModel(
            "sd", IModelRegistry.ModelKind.Image, WEIGHTS, bytes32(0), 1e9, 8_000, _imageRates()
        );
        assertEq(id, expected);
        assertEq(grid.getModel(id).tokenizerHash, bytes32(0));
    }

    function test_registerModel_sameNameOtherWeights_isAnotherModel() public {
        bytes32 a = _registerText("m");
        vm.prank(owner);
        bytes32 b = grid.registerModel(
            "m", IModelRegistry.ModelKind.Text, bytes32(uint256(1)), TOKENIZER, 1, 1, _textRates()
        );
        assertTrue(a != b);
        assertEq(grid.modelIds().length, 2);
    }

    function test_registerModel_revertsWhenNotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, stranger));
        vm.prank(stranger);
        grid.registerModel("m", IModelRegistry.ModelKind.Text, WEIGHTS, TOKENIZER, 1, 1, _textRates());
    }

    function test_registerModel_revertsWhenNameEmpty() public {
        vm.expectRevert(IModelRegistry.EmptyName.selector);
        vm.prank(owner);
        grid.registerModel("", IModelRegistry.ModelKind.Text, WEIGHTS, TOKENIZER, 1, 1, _textRates());
    }

    function test_registerModel_revertsWhenWeightsHashZero() public {
        vm.expectRevert(IModelRegistry.ZeroWeightsHash.selector);
        vm.prank(owner);
        grid.registerModel("m", IModelRegistry.ModelKind.Text, bytes32(0), TOKENIZER, 1, 1, _textRates());
    }

    function test_registerModel_revertsWhenTextTokenizerHashZero() public {
        vm.expectRevert(IModelRegistry.ZeroTokenizerHash.selector);
        vm.prank(owner);
        grid.registerModel("m", IModelRegistry.ModelKind.Text, WEIGHTS, bytes32(0), 1, 1, _textRates());
    }

    function test_registerModel_revertsWhenExists() public {
        bytes32 id = _registerText("m");
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelExists.selector, id));
        vm.prank(owner);
        grid.registerModel("m", IModelRegistry.ModelKind.Text, WEIGHTS, TOKENIZER, 2, 2, _textRates());
    }

    function test_registerModel_revertsWhenTextInputRateZero() public {
        IModelRegistry.RateCard memory r = _textRates();
        r.inputPerMTokens = 0;
        vm.expectRevert(IModelRegistry.InvalidRates.selector);
        vm.prank(owner);
        grid.registerModel("m", IModelRegistry.ModelKind.Text, WEIGHTS, TOKENIZER, 1, 1, r);
    }

    function test_registerModel_revertsWhenTextOutputRateZero() public {
        IModelRegistry.RateCard memory r = _textRates();
        r.outputPerMTokens = 0;
        vm.expectRevert(IModelRegistry.InvalidRates.selector);
        vm.prank(owner);
        grid.registerModel("m", IModelRegistry.ModelKind.Text, WEIGHTS, TOKENIZER, 1, 1, r);
    }

    function test_registerModel_revertsWhenImageRateZero() public {
        vm.expectRevert(IModelRegistry.InvalidRates.selector);
        vm.prank(owner);
        grid.registerModel("m", IModelRegistry.ModelKind.Image, WEIGHTS, bytes32(0), 1, 1, _textRates());
    }

    /// The tokenizer is part of the model's identity: no owner write after registration touches it.
    function test_registerModel_tokenizerHashNeverChanges() public {
        bytes32 id = _registerText("m");
        vm.startPrank(owner);
        grid.setModelRates(
            id, IModelRegistry.RateCard({inputPerMTokens: 5, outputPerMTokens: 6, perMegapixelStep: 0})
        );
        grid.setModelActive(id, false);
        grid.setModelActive(id, true);
        vm.stopPrank();
        assertEq(grid.getModel(id).tokenizerHash, TOKENIZER);
    }

    // ---------------------------------------------------------------- rates

    function test_setModelRates_updates() public {
        bytes32 id = _registerText("m");
        IModelRegistry.RateCard memory r =
            IModelRegistry.RateCard({inputPerMTokens: 5, outputPerMTokens: 6, perMegapixelStep: 0});
        vm.expectEmit(address(grid));
        emit IModelRegistry.ModelRatesUpdated(id, r);
        vm.prank(owner);
        grid.setModelRates(id, r);
        assertEq(grid.getModel(id).rates.inputPerMTokens, 5);
        assertEq(grid.getModel(id).rates.outputPerMTokens, 6);
    }

    function test_setModelRates_revertsWhenInvalidForKind() public {
        bytes32 id = _registerText("m");
        vm.expectRevert(IModelRegistry.InvalidRates.selector);
        vm.prank(owner);
        grid.setModelRates(id, _imageRates());
    }

    function test_setModelRates_revertsWhenUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.UnknownModel.selector, bytes32(uint256(7))));
        vm.prank(owner);
        grid.setModelRates(bytes32(uint256(7)), _textRates());
    }

    function test_setModelRates_revertsWhenNotOwner() public {
        bytes32 id = _registerText("m");
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, stranger));
        vm.prank(stranger);
        grid.setModelRates(id, _textRates());
    }

    // ---------------------------------------------------------------- active flag

    function test_setModelActive_toggles() public {
        bytes32 id = _registerText("m");
        vm.expectEmit(address(grid));
        emit IModelRegistry.ModelActiveSet(id, false);
        vm.prank(owner);
        grid.setModelActive(id, false);
        assertFalse(grid.getModel(id).active);
        vm.prank(owner);
        grid.setModelActive(id, true);
        assertTrue(grid.getModel(id).active);
    }

    function test_setModelActive_revertsWhenUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.UnknownModel.selector, bytes32(uint256(7))));
        vm.prank(owner);
        grid.setModelActive(bytes32(uint256(7)), false);
    }

    function test_setModelActive_revertsWhenNotOwner() public {
        bytes32 id = _registerText("m");
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, stranger));
        vm.prank(stranger);
        grid.setModelActive(id, false);
    }

    // ---------------------------------------------------------------- premium

    function test_confidentialPremium_defaultFromInit() public view {
        assertEq(grid.confidentialPremiumBps(), PREMIUM_BPS);
    }

    function test_setConfidentialPremium_updates() public {
        vm.expectEmit(address(grid));
        emit IModelRegistry.ConfidentialPremiumUpdated(10_000);
        vm.prank(owner);
        grid.setConfidentialPremium(10_000);
        assertEq(grid.confidentialPremiumBps(), 10_000);
    }

    function test_setConfidentialPremium_revertsWhenTooHigh() public {
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.PremiumTooHigh.selector, 10_001, 10_000));
        vm.prank(owner);
        grid.setConfidentialPremium(10_001);
    }

    function test_setConfidentialPremium_revertsWhenNotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, stranger));
        vm.prank(stranger);
        grid.setConfidentialPremium(1);
    }

    function testFuzz_setConfidentialPremium(uint16 bps) public {
        if (bps > 10_000) {
            vm.expectRevert(abi.encodeWithSelector(IModelRegistry.PremiumTooHigh.selector, bps, 10_000));
        }
        vm.prank(owner);
        grid.setConfidentialPremium(bps);
        assertEq(grid.confidentialPremiumBps(), bps > 10_000 ? PREMIUM_BPS : bps);
    }

    // ---------------------------------------------------------------- views

    function test_getModel_revertsWhenUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.UnknownModel.selector, bytes32(0)));
        grid.getModel(bytes32(0));
    }

    function testFuzz_computeModelId(string calldata name, bytes32 weightsHash) public view {
        assertEq(grid.computeModelId(name, weightsHash), keccak256(abi.encode(name, weightsHash)));
    }
}
