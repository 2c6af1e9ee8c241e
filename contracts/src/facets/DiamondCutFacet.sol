// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IDiamondCut} from "../interfaces/IDiamondCut.sol";
import {ICutTimelock} from "../interfaces/ICutTimelock.sol";
import {IDiamond} from "../interfaces/IDiamond.sol";
import {LibDiamond} from "../libraries/LibDiamond.sol";

/// @title EIP-2535 `diamondCut` behind an announce-then-wait timelock.
/// @notice Every cut after deployment must be announced (by its hash) at least `cutDelay` earlier;
/// the announcement is consumed when the cut runs. `cutDelay` exceeds the unbond and deposit-withdrawal
/// delays, so anyone can leave before an announced upgrade lands.
contract DiamondCutFacet is IDiamondCut, ICutTimelock {
    /// @inheritdoc IDiamondCut
    /// @dev Owner only; reverts `CutNotAnnounced` / `CutNotReady` unless the hash of these exact
    /// arguments was announced at least `cutDelay` ago, and `ImmutableSelector` on a protected selector.
    function diamondCut(FacetCut[] calldata _diamondCut, address _init, bytes calldata _calldata) external {
        LibDiamond.enforceIsContractOwner();
        LibDiamond.Layout storage l = LibDiamond.layout();
        bytes32 cutHash = keccak256(abi.encode(_diamondCut, _init, _calldata));
        uint64 executableAt = l.cutExecutableAt[cutHash];
        if (executableAt == 0) revert CutNotAnnounced(cutHash);
        // The delay is days long; a few seconds of proposer drift do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < executableAt) revert CutNotReady(cutHash, executableAt);
        delete l.cutExecutableAt[cutHash];
        LibDiamond.diamondCut(_diamondCut, _init, _calldata);
    }

    /// @notice Announces a later `diamondCut` by its hash (`hashDiamondCut`); it can run `cutDelay` from now.
    /// @dev Owner only. Announcing a hash again restarts its delay.
    function announceDiamondCut(bytes32 cutHash) external {
        LibDiamond.enforceIsContractOwner();
        LibDiamond.Layout storage l = LibDiamond.layout();
        uint64 executableAt = uint64(block.timestamp) + l.cutDelay;
        l.cutExecutableAt[cutHash] = executableAt;
        emit DiamondCutAnnounced(cutHash, executableAt);
    }

    /// @notice Withdraws an announcement so the cut can no longer run.
    /// @dev Owner only; reverts `CutNotAnnounced` for a hash that is not pending.
    function cancelDiamondCut(bytes32 cutHash) external {
        LibDiamond.enforceIsContractOwner();
        LibDiamond.Layout storage l = LibDiamond.layout();
        if (l.cutExecutableAt[cutHash] == 0) revert CutNotAnnounced(cutHash);
        delete l.cutExecutableAt[cutHash];
        emit DiamondCutCancelled(cutHash);
    }

    /// @notice When an announced cut may run; 0 when the hash is not pending (never announced, executed or
    /// cancelled).
    function cutExecutableAt(bytes32 cutHash) external view returns (uint64) {
        return LibDiamond.layout().cutExecutableAt[cutHash];
    }

    /// @notice Seconds between an announcement and the earliest execution, set at deployment.
    function cutDelay() external view returns (uint64) {
        return LibDiamond.layout().cutDelay;
    }

    /// @notice `keccak256(abi.encode(_diamondCut, _init, _calldata))`: what `announceDiamondCut` takes.
    function hashDiamondCut(IDiamond.FacetCut[] calldata _diamondCut, address _init, bytes calldata _calldata)
        external
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(_diamondCut, _init, _calldata));
    }
}
