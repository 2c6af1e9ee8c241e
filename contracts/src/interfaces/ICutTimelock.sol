// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IDiamond} from "./IDiamond.sol";

/// @title Announced changes: the exit window before any upgrade or rule change.
/// @notice After deployment, a cut (and every audit rule or randomness-source change, see IAudit) runs only
/// if it was announced, with its full content in the announcing event, at least `cutDelay` earlier, and
/// only within `changeWindow` seconds after it matured: then it lapses and must be announced again.
/// `cutDelay` exceeds every exit delay (unbond, deposit withdrawal) by at least the network's reaction
/// margin (`DiamondInit.reactionMargin`: days on Base, seconds on a devnet), so anyone who dislikes an
/// announced change can take everything out before it lands.
/// @dev The constructor's cut needs no announcement. `diamondCut`, these functions and every
/// bonding/withdrawal selector are immutable (a Replace or Remove of them reverts).
interface ICutTimelock {
    /// @notice A cut was announced: everything it will do is in this event.
    event DiamondCutAnnounced(
        bytes32 indexed cutHash,
        IDiamond.FacetCut[] cut,
        address init,
        bytes initCalldata,
        uint64 executableAt,
        uint64 expiresAt
    );
    /// @notice An announced change (cut or rule) was withdrawn before it ran.
    event ChangeCancelled(bytes32 indexed id);
    /// @notice An announced change (cut or rule) ran: its announcement is consumed.
    event ChangeExecuted(bytes32 indexed id);

    error ChangeNotAnnounced(bytes32 id);
    error ChangeNotReady(bytes32 id, uint64 executableAt);
    error ChangeExpired(bytes32 id, uint64 expiresAt);

    /// @notice Announces a later `diamondCut(cut, init, initCalldata)`; returns its hash.
    function announceDiamondCut(IDiamond.FacetCut[] calldata cut, address init, bytes calldata initCalldata)
        external
        returns (bytes32 cutHash);
    /// @notice Withdraws any announced change (a cut, a config or a source) by its id.
    function cancelChange(bytes32 id) external;
    /// @notice When an announced change may run and when it lapses; (0, 0) when not pending.
    function pendingChange(bytes32 id) external view returns (uint64 executableAt, uint64 expiresAt);
    function cutDelay() external view returns (uint64);
    /// @notice Seconds after maturity during which an announced change may still run.
    function changeWindow() external view returns (uint64);
    function hashDiamondCut(IDiamond.FacetCut[] calldata _diamondCut, address _init, bytes calldata _calldata)
        external
        pure
        returns (bytes32);
}
