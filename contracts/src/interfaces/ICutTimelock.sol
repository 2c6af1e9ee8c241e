// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IDiamond} from "./IDiamond.sol";

/// @title Exit window on upgrades. After deployment a cut runs only if its hash was announced at
/// least `cutDelay` earlier, and `cutDelay` is longer than the unbond and deposit-withdrawal delays:
/// anyone who dislikes an announced upgrade can withdraw everything before it lands.
/// @dev The constructor's cut needs no announcement. `diamondCut`, these functions and every
/// bonding/withdrawal selector are immutable (a Replace or Remove of them reverts).
interface ICutTimelock {
    event DiamondCutAnnounced(bytes32 indexed cutHash, uint64 executableAt);
    event DiamondCutCancelled(bytes32 indexed cutHash);

    error CutNotAnnounced(bytes32 cutHash);
    error CutNotReady(bytes32 cutHash, uint64 executableAt);

    /// @notice `cutHash = keccak256(abi.encode(_diamondCut, _init, _calldata))` of a later `diamondCut`.
    function announceDiamondCut(bytes32 cutHash) external;
    function cancelDiamondCut(bytes32 cutHash) external;
    function cutExecutableAt(bytes32 cutHash) external view returns (uint64);
    function cutDelay() external view returns (uint64);
    function hashDiamondCut(IDiamond.FacetCut[] calldata _diamondCut, address _init, bytes calldata _calldata)
        external
        pure
        returns (bytes32);
}
