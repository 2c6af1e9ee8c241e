// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ICommon} from "./ICommon.sol";

/// @title Types, events and errors shared by the worker and validator registries (one bonding library).
/// @dev Events carry a `role` so one indexer reads both registries: 0 = worker, 1 = validator.
interface IBonding is ICommon {
    enum Role {
        Worker,
        Validator
    }

    struct BondInfo {
        uint256 amount; // active bond
        uint256 unbonding; // requested to unbond, still slashable
        uint64 unbondReadyAt; // when `unbonding` can be withdrawn (0 when nothing is unbonding)
        address operator; // hot key that signs receipts / attestations; defaults to the owner
        uint256 slashed; // total ever slashed from this bond
        bool active; // amount >= minimum
    }

    event Bonded(Role indexed role, address indexed owner, uint256 amount, uint256 newAmount);
    event UnbondRequested(Role indexed role, address indexed owner, uint256 amount, uint64 readyAt);
    event UnbondCancelled(Role indexed role, address indexed owner, uint256 amount);
    event BondWithdrawn(Role indexed role, address indexed owner, uint256 amount);
    event OperatorSet(Role indexed role, address indexed owner, address indexed operator);
    event BondSlashed(Role indexed role, address indexed owner, uint256 amount);

    error BondTooLow(uint256 bond, uint256 minimum);
    error AlreadyBonded(address owner);
    error NotBonded(address owner);
    error InsufficientBond(uint256 requested, uint256 available);
    error NothingUnbonding(address owner);
    error UnbondNotReady(uint64 readyAt, uint64 nowTs);
    error OperatorTaken(address operator, address owner);
}
