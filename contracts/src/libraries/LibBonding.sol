// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IBonding} from "../interfaces/IBonding.sol";
import {ICommon} from "../interfaces/ICommon.sol";
import {LibGrid} from "./LibGrid.sol";

/// @title Bonds for both roles (workers and validators): one library, one namespaced layout per role.
/// @notice A bond is owned by the address that posted it and only that address can ever withdraw it.
/// Slashing is internal only (`slash`), for the audit logic; there is no external slash entry point.
library LibBonding {
    using SafeERC20 for IERC20;
    using EnumerableSet for EnumerableSet.AddressSet;
    using Checkpoints for Checkpoints.Trace160;
    using Checkpoints for Checkpoints.Trace208;

    struct Bond {
        uint256 amount; // active
        uint256 unbonding; // requested to unbond, still slashable
        uint64 unbondReadyAt; // 0 when nothing is unbonding
        address operator; // hot key; the owner itself unless it named another
        uint256 slashed; // total ever slashed
    }

    /// @dev One instance per role, each at its own ERC-7201 slot (see `layout`).
    /// @custom:storage-location erc7201:aipg.storage.Bonding.Worker
    /// @custom:storage-location erc7201:aipg.storage.Bonding.Validator
    struct Layout {
        uint256 minimum;
        uint64 unbondDelay;
        uint256 totalBonded; // sum of amount + unbonding over all bonds
        mapping(address owner => Bond) bonds;
        mapping(address operator => address owner) operatorOwner;
        EnumerableSet.AddressSet activeOwners; // owners with amount >= minimum
        // Operator key history, keyed by timestamp: a receipt is checked against the key its worker had when
        // it signed (`operatorAt`), so rotating a key neither voids old receipts nor lets a new key sign old ones.
        mapping(address owner => Checkpoints.Trace160) operatorHistory;
        // Validators only: each owner's active weight (its active bond while active, else 0), keyed by block
        // number, so audit seats are drawn from stakes as they were before settlement.
        mapping(address owner => Checkpoints.Trace208) weightHistory;
        address[] members; // every owner that ever bonded, in order of first bond (append-only)
    }

    // keccak256(abi.encode(uint256(keccak256("aipg.storage.Bonding.Worker")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant WORKER_SLOT =
        0xcb4c44771ecd80e9112a1db00c6f36b575558ddccb94f8708c7d906e79688b00;
    // keccak256(abi.encode(uint256(keccak256("aipg.storage.Bonding.Validator")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant VALIDATOR_SLOT =
        0xde5407f4eea6c6c5c722a004accf9090ab55d1019188bd37c1d1ab0efd4b1000;

    function layout(IBonding.Role role) internal pure returns (Layout storage l) {
        bytes32 slot = role == IBonding.Role.Worker ? WORKER_SLOT : VALIDATOR_SLOT;
        assembly {
            l.slot := slot
        }
    }

    // ---------------------------------------------------------------- configuration (DiamondInit)

    function configure(IBonding.Role role, uint256 minimum, uint64 unbondDelay) internal {
        Layout storage l = layout(role);
        l.minimum = minimum;
        l.unbondDelay = unbondDelay;
    }

    // ---------------------------------------------------------------- reads

    /// @dev Active plus unbonding; 0 if never bonded (or fully withdrawn / slashed).
    function bondedAmount(IBonding.Role role, address owner) internal view returns (uint256) {
        Bond storage b = layout(role).bonds[owner];
        return b.amount + b.unbonding;
    }

    function isActive(IBonding.Role role, address owner) internal view returns (bool) {
        return layout(role).activeOwners.contains(owner);
    }

    /// @dev The owner behind `operator`; address(0) if the key belongs to no bond.
    function ownerOf(IBonding.Role role, address operator) internal view returns (address) {
        return layout(role).operatorOwner[operator];
    }

    function bondInfo(IBonding.Role role, address owner)
        internal
        view
        returns (IBonding.BondInfo memory info)
    {
        Layout storage l = layout(role);
        Bond storage b = l.bonds[owner];
        info = IBonding.BondInfo({
            amount: b.amount,
            unbonding: b.unbonding,
            unbondReadyAt: b.unbondReadyAt,
            operator: b.operator,
            slashed: b.slashed,
            active: l.activeOwners.contains(owner)
        });
    }

    function activeOwners(IBonding.Role role) internal view returns (address[] memory) {
        return layout(role).activeOwners.values();
    }

    /// @dev The operator key of `owner`'s bond at `timestamp` (address(0) when it had no bond then).
    function operatorAt(IBonding.Role role, address owner, uint64 timestamp) internal view returns (address) {
        return address(layout(role).operatorHistory[owner].upperLookupRecent(uint96(timestamp)));
    }

    // ---------------------------------------------------------------- writes

    /// @dev First bond of `owner`: at least the minimum, pulled from `owner` with transferFrom.
    function bond(IBonding.Role role, address owner, uint256 amount, address operator) internal {
        LibGrid.requireNotPaused();
        Layout storage l = layout(role);
        Bond storage b = l.bonds[owner];
        if (b.amount + b.unbonding != 0) revert IBonding.AlreadyBonded(owner);
        if (amount < l.minimum) revert IBonding.BondTooLow(amount, l.minimum);
        if (operator == address(0)) operator = owner;
        _claimOperator(l, owner, operator);

        b.amount = amount;
        b.operator = operator;
        l.totalBonded += amount;
        if (role == IBonding.Role.Validator && l.operatorHistory[owner].length() == 0) l.members.push(owner);
        _recordOperator(l, owner, operator);
        _syncActive(l, role, owner, amount);
        emit IBonding.OperatorSet(role, owner, operator);
        emit IBonding.Bonded(role, owner, amount, amount);

        LibGrid.token().safeTransferFrom(owner, address(this), amount);
    }

    /// @dev Adds to an existing bond (active or unbonding); may bring a slashed bond back above the minimum.
    function increase(IBonding.Role role, address owner, uint256 amount) internal {
        LibGrid.requireNotPaused();
        if (amount == 0) revert ICommon.ZeroAmount();
        Layout storage l = layout(role);
        Bond storage b = l.bonds[owner];
        if (b.amount + b.unbonding == 0) revert IBonding.NotBonded(owner);

        uint256 newAmount = b.amount + amount;
        b.amount = newAmount;
        l.totalBonded += amount;
        _syncActive(l, role, owner, newAmount);
        emit IBonding.Bonded(role, owner, amount, newAmount);

        LibGrid.token().safeTransferFrom(owner, address(this), amount);
    }

    /// @dev Moves `amount` from active to unbonding and restarts the delay for everything unbonding.
    function requestUnbond(IBonding.Role role, address owner, uint256 amount) internal {
        if (amount == 0) revert ICommon.ZeroAmount();
        Layout storage l = layout(role);
        Bond storage b = l.bonds[owner];
        uint256 active = b.amount;
        if (active + b.unbonding == 0) revert IBonding.NotBonded(owner);
        if (amount > active) revert IBonding.InsufficientBond(amount, active);
        uint256 remaining;
        // amount <= active was checked just above.
        unchecked {
            remaining = active - amount;
        }
        if (remaining != 0 && remaining < l.minimum) revert IBonding.BondTooLow(remaining, l.minimum);

        uint64 readyAt = uint64(block.timestamp) + l.unbondDelay;
        b.amount = remaining;
        b.unbonding += amount;
        b.unbondReadyAt = readyAt;
        _syncActive(l, role, owner, remaining);
        emit IBonding.UnbondRequested(role, owner, amount, readyAt);
    }

    /// @dev Moves everything unbonding back to the active bond.
    function cancelUnbond(IBonding.Role role, address owner) internal {
        Layout storage l = layout(role);
        Bond storage b = l.bonds[owner];
        uint256 unbonding = b.unbonding;
        if (unbonding == 0) revert IBonding.NothingUnbonding(owner);

        uint256 newAmount = b.amount + unbonding;
        b.amount = newAmount;
        b.unbonding = 0;
        b.unbondReadyAt = 0;
        _syncActive(l, role, owner, newAmount);
        emit IBonding.UnbondCancelled(role, owner, unbonding);
    }

    /// @dev Sends everything unbonding to `owner` once ready. Deliberately not pausable.
    function withdraw(IBonding.Role role, address owner) internal {
        Layout storage l = layout(role);
        Bond storage b = l.bonds[owner];
        uint256 amount = b.unbonding;
        if (amount == 0) revert IBonding.NothingUnbonding(owner);
        // Delays are days long; a few seconds of proposer drift do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < b.unbondReadyAt) {
            revert IBonding.UnbondNotReady(b.unbondReadyAt, uint64(block.timestamp));
        }

        b.unbonding = 0;
        b.unbondReadyAt = 0;
        // `amount` is part of totalBonded, which is the sum of every bond's amount + unbonding.
        unchecked {
            l.totalBonded -= amount;
        }
        if (b.amount == 0) _releaseOperator(l, owner, b);
        emit IBonding.BondWithdrawn(role, owner, amount);

        LibGrid.token().safeTransfer(owner, amount);
    }

    /// @dev Names a new operator key (0 = the owner itself); frees the previous one.
    function setOperator(IBonding.Role role, address owner, address operator) internal {
        Layout storage l = layout(role);
        Bond storage b = l.bonds[owner];
        if (b.amount + b.unbonding == 0) revert IBonding.NotBonded(owner);
        if (operator == address(0)) operator = owner;
        address previous = b.operator;
        if (previous != operator) {
            _claimOperator(l, owner, operator);
            delete l.operatorOwner[previous];
            b.operator = operator;
            _recordOperator(l, owner, operator);
        }
        emit IBonding.OperatorSet(role, owner, operator);
    }

    /// @notice The internal slash hook: takes up to `amount` from the active bond first, then from unbonding.
    /// @dev The tokens stay in the diamond; the caller accounts for where they go. Emits `BondSlashed`
    /// only when something was taken. Frees the operator key when nothing remains.
    /// @return slashed What was actually taken (at most the bond).
    function slash(IBonding.Role role, address owner, uint256 amount) internal returns (uint256 slashed) {
        Layout storage l = layout(role);
        Bond storage b = l.bonds[owner];
        uint256 active = b.amount;
        uint256 unbonding = b.unbonding;
        uint256 fromActive = amount < active ? amount : active;
        uint256 fromUnbonding;
        // fromActive <= amount, and both subtractions below are bounded by min() choices.
        unchecked {
            uint256 rest = amount - fromActive;
            fromUnbonding = rest < unbonding ? rest : unbonding;
            slashed = fromActive + fromUnbonding; // <= active + unbonding <= totalBonded
            b.amount = active - fromActive;
            b.unbonding = unbonding - fromUnbonding;
        }
        if (slashed == 0) return 0;

        // `slashed` is part of this bond, hence of totalBonded.
        unchecked {
            l.totalBonded -= slashed;
        }
        b.slashed += slashed;
        if (b.unbonding == 0) b.unbondReadyAt = 0;
        _syncActive(l, role, owner, b.amount);
        if (b.amount == 0 && b.unbonding == 0) _releaseOperator(l, owner, b);
        emit IBonding.BondSlashed(role, owner, slashed);
    }

    // ---------------------------------------------------------------- private

    /// @dev A key already naming another bond, or the owner of another bond of this role, cannot be taken.
    function _claimOperator(Layout storage l, address owner, address operator) private {
        address current = l.operatorOwner[operator];
        if (current != address(0) && current != owner) revert IBonding.OperatorTaken(operator, current);
        if (operator != owner) {
            Bond storage other = l.bonds[operator];
            if (other.amount + other.unbonding != 0) revert IBonding.OperatorTaken(operator, operator);
        }
        l.operatorOwner[operator] = owner;
    }

    function _releaseOperator(Layout storage l, address owner, Bond storage b) private {
        delete l.operatorOwner[b.operator];
        b.operator = address(0);
        _recordOperator(l, owner, address(0));
    }

    function _recordOperator(Layout storage l, address owner, address operator) private {
        l.operatorHistory[owner].push(uint96(block.timestamp), uint160(operator));
    }

    /// @dev Keeps the active set and, for validators, the weight checkpoints in step with the active bond.
    function _syncActive(Layout storage l, IBonding.Role role, address owner, uint256 activeAmount) private {
        bool active = activeAmount != 0 && activeAmount >= l.minimum;
        if (active) l.activeOwners.add(owner);
        else l.activeOwners.remove(owner);
        if (role != IBonding.Role.Validator) return;
        uint256 weight = active ? activeAmount : 0;
        Checkpoints.Trace208 storage own = l.weightHistory[owner];
        if (weight == own.latest()) return;
        own.push(SafeCast.toUint48(block.number), SafeCast.toUint208(weight));
    }

    // ---------------------------------------------------------------- stake checkpoints (validators)

    /// @dev `owner`'s active validator weight at the end of block `blockNumber`.
    function weightAt(address owner, uint48 blockNumber) internal view returns (uint256) {
        return layout(IBonding.Role.Validator).weightHistory[owner].upperLookupRecent(blockNumber);
    }

}
