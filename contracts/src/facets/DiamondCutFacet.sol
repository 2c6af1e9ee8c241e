// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IDiamondCut} from "../interfaces/IDiamondCut.sol";
import {ICutTimelock} from "../interfaces/ICutTimelock.sol";
import {IDiamond} from "../interfaces/IDiamond.sol";
import {LibDiamond} from "../libraries/LibDiamond.sol";
import {LibTimelock} from "../libraries/LibTimelock.sol";

/// @title EIP-2535 `diamondCut` behind an announce-then-wait timelock.
/// @notice Every cut after deployment must be announced with its full content (facets, selectors, init
/// address and calldata, all in `DiamondCutAnnounced`) at least `cutDelay` earlier, and runs only within
/// `changeWindow` after it matures; the announcement is consumed when the cut runs. `cutDelay` exceeds the
/// unbond and deposit-withdrawal delays by the network's reaction margin, so anyone can leave before an
/// announced upgrade lands.
contract DiamondCutFacet is IDiamondCut, ICutTimelock {
    /// @inheritdoc IDiamondCut
    /// @dev Owner only; reverts `ChangeNotAnnounced` / `ChangeNotReady` / `ChangeExpired` unless these exact
    /// arguments were announced at least `cutDelay` ago and at most `cutDelay + changeWindow` ago, and
    /// `ImmutableSelector` on a protected selector.
    function diamondCut(FacetCut[] calldata _diamondCut, address _init, bytes calldata _calldata) external {
        LibDiamond.enforceIsContractOwner();
        LibTimelock.consume(keccak256(abi.encode(_diamondCut, _init, _calldata)));
        LibDiamond.diamondCut(_diamondCut, _init, _calldata);
    }

    /// @inheritdoc ICutTimelock
    /// @dev Owner only. Announcing the same cut again restarts its delay.
    function announceDiamondCut(FacetCut[] calldata cut, address init, bytes calldata initCalldata)
        external
        returns (bytes32 cutHash)
    {
        LibDiamond.enforceIsContractOwner();
        cutHash = keccak256(abi.encode(cut, init, initCalldata));
        (uint64 executableAt, uint64 expiresAt) = LibTimelock.announce(cutHash);
        emit DiamondCutAnnounced(cutHash, cut, init, initCalldata, executableAt, expiresAt);
    }

    /// @inheritdoc ICutTimelock
    /// @dev Owner only; reverts `ChangeNotAnnounced` for an id that is not pending.
    function cancelChange(bytes32 id) external {
        LibDiamond.enforceIsContractOwner();
        LibTimelock.cancel(id);
    }

    /// @inheritdoc ICutTimelock
    function pendingChange(bytes32 id) external view returns (uint64 executableAt, uint64 expiresAt) {
        return LibTimelock.pending(id);
    }

    /// @inheritdoc ICutTimelock
    function cutDelay() external view returns (uint64) {
        return LibTimelock.layout().delay;
    }

    /// @inheritdoc ICutTimelock
    function changeWindow() external view returns (uint64) {
        return LibTimelock.layout().window;
    }

    /// @notice `keccak256(abi.encode(_diamondCut, _init, _calldata))`: the id of a cut.
    function hashDiamondCut(IDiamond.FacetCut[] calldata _diamondCut, address _init, bytes calldata _calldata)
        external
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(_diamondCut, _init, _calldata));
    }
}
