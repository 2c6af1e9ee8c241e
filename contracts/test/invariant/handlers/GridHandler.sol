// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {IGrid} from "../../../src/interfaces/IGrid.sol";
import {IBonding} from "../../../src/interfaces/IBonding.sol";
import {IPayments} from "../../../src/interfaces/IPayments.sol";
import {TestAIPG} from "../../../src/token/TestAIPG.sol";

/// @notice Drives the diamond the way its users do (bonds for both roles, escrow, settlement, withdrawals,
/// pauses, time) among a fixed set of actors, and keeps ghost books of what should be where.
/// @dev Every action checks its own preconditions and returns early when they do not hold, so almost every
/// call reaches the diamond. Handlers never assert (with fail_on_revert = false a failing assert would be
/// dropped silently); they record mismatches in ghost flags that the invariants check.
contract GridHandler is CommonBase, StdCheats, StdUtils {
    IGrid internal immutable grid;
    TestAIPG internal immutable aipg;
    address internal immutable gridOwner;
    address internal immutable treasury;

    uint256 internal constant MAX_AMOUNT = 1e24;
    uint16 internal constant BPS = 10_000;

    address[] public actors;

    // ghost totals: what the diamond should hold, bucket by bucket
    uint256 public ghost_workerBonded;
    uint256 public ghost_validatorBonded;
    uint256 public ghost_deposits;
    uint256 public ghost_earnings;
    uint256 public ghost_validatorPool;
    uint256 public ghost_protocolFees;
    uint256 public ghost_protocolFeesPaid;
    uint256 public ghost_batches;

    // ghost per actor
    mapping(address => uint256) public ghost_bondedIn; // bonds it posted (both roles)
    mapping(address => uint256) public ghost_depositedIn; // deposits credited to it
    mapping(address => uint256) public ghost_earned; // earnings credited to it
    mapping(address => uint256) public ghost_debited; // settled out of its deposit
    mapping(address => uint256) public ghost_received; // AIPG the diamond sent it

    // a withdrawal paid something other than what the books said it should
    bool public ghost_payoutMismatch;
    // a gateway cap moved other than by the saturating increase / decrease asked for
    bool public ghost_capMismatch;
    // a settlement that did not start at the gateway's next receipt number went through
    bool public ghost_sequenceAccepted;

    mapping(bytes4 => uint256) public calls;

    // private keys: each actor's own, and the key of each worker's operator (its receipts' signer)
    mapping(address => uint256) internal actorKey;
    mapping(address worker => uint256) internal workerKey;

    // ghost per actor and role: its stake (active + unbonding) as only its own bonds, its own withdrawals and
    // predicted audit slashes moved it
    mapping(address => uint256) public ghost_workerStake;
    mapping(address => uint256) public ghost_validatorStake;

    // per batch: the validator share it paid, and what audits paid out of it
    mapping(uint256 batchId => uint256) public ghost_batchShare;
    mapping(uint256 batchId => uint256) public ghost_batchRewardsPaid;
    bool public ghost_batchShareMismatch;

    uint16 internal immutable workerBps;
    uint16 internal immutable validatorBps;

    constructor(IGrid grid_, TestAIPG aipg_, address owner_, address treasury_, uint256 count) {
        grid = grid_;
        aipg = aipg_;
        gridOwner = owner_;
        treasury = treasury_;
        for (uint256 i; i < count; ++i) {
            (address a, uint256 key) = makeAddrAndKey(string.concat("actor", vm.toString(i)));
            actors.push(a);
            actorKey[a] = key;
        }
        IPayments.RevenueShares memory s = grid_.revenueShares();
        workerBps = s.workerBps;
        validatorBps = s.validatorBps;
    }

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    function _actor(uint256 seed) internal view returns (address) {
        return actors[seed % actors.length];
    }

    /// @dev The k-th actor from `seed` on, wrapping around: lets an action look for an actor it applies to.
    function _nth(uint256 seed, uint256 k) internal view returns (address) {
        return actors[(seed % actors.length + k) % actors.length];
    }

    function _mintAndApprove(address who, uint256 amount) internal {
        aipg.mint(who, amount);
        vm.prank(who);
        aipg.approve(address(grid), amount);
    }

    function _bond(IBonding.Role role, address who) internal view returns (IBonding.BondInfo memory) {
        return role == IBonding.Role.Worker ? grid.workerBond(who) : grid.validatorBond(who);
    }

    function _minimum(IBonding.Role role) internal view returns (uint256) {
        return role == IBonding.Role.Worker ? grid.workerMinimumBond() : grid.validatorMinimumBond();
    }

    function _addBonded(IBonding.Role role, address who, uint256 amount) internal {
        if (role == IBonding.Role.Worker) {
            ghost_workerBonded += amount;
            ghost_workerStake[who] += amount;
        } else {
            ghost_validatorBonded += amount;
            ghost_validatorStake[who] += amount;
        }
        ghost_bondedIn[who] += amount;
    }

    function _role(bool validator) internal pure returns (IBonding.Role) {
        return validator ? IBonding.Role.Validator : IBonding.Role.Worker;
    }

    // ---------------------------------------------------------------- bonding (both roles)

    function bond(uint256 actorSeed, uint256 amount, bool validator) external {
        if (grid.paused()) return;
        IBonding.Role role = _role(validator);
        address who = _actor(actorSeed);
        IBonding.BondInfo memory b = _bond(role, who);
        if (b.amount + b.unbonding != 0) return;
        uint256 minimum = _minimum(role);
        amount = _bound(amount, minimum, 5 * minimum);
        _mintAndApprove(who, amount);
        vm.prank(who);
        if (validator) grid.bondValidator(amount, address(0));
        else grid.bondWorker(amount, address(0));
        if (!validator) workerKey[who] = actorKey[who]; // its own key signs until it names another
        _addBonded(role, who, amount);
        calls[this.bond.selector]++;
    }

    function increaseBond(uint256 actorSeed, uint256 amount, bool validator) external {
        if (grid.paused()) return;
        IBonding.Role role = _role(validator);
        address who;
        for (uint256 k; k < actors.length; ++k) {
            IBonding.BondInfo memory b = _bond(role, _nth(actorSeed, k));
            if (b.amount + b.unbonding != 0) {
                who = _nth(actorSeed, k);
                break;
            }
        }
        if (who == address(0)) return;
        amount = _bound(amount, 1, _minimum(role));
        _mintAndApprove(who, amount);
        vm.prank(who);
        if (validator) grid.increaseValidatorBond(amount);
        else grid.increaseWorkerBond(amount);
        _addBonded(role, who, amount);
        calls[this.increaseBond.selector]++;
    }

    function requestUnbond(uint256 actorSeed, uint256 amount, bool validator) external {
        IBonding.Role role = _role(validator);
        address who;
        uint256 active;
        for (uint256 k; k < actors.length && active == 0; ++k) {
            who = _nth(actorSeed, k);
            active = _bond(role, who).amount;
        }
        if (active == 0) return;
        uint256 minimum = _minimum(role);
        // either everything, or a part that leaves at least the minimum active
        if (active < 2 * minimum || amount % 3 == 0) amount = active;
        else amount = _bound(amount, 1, active - minimum);
        vm.prank(who);
        if (validator) grid.requestValidatorUnbond(amount);
        else grid.requestWorkerUnbond(amount);
        calls[this.requestUnbond.selector]++;
    }

    function cancelUnbond(uint256 actorSeed, bool validator) external {
        IBonding.Role role = _role(validator);
        address who;
        for (uint256 k; k < actors.length; ++k) {
            if (_bond(role, _nth(actorSeed, k)).unbonding != 0) {
                who = _nth(actorSeed, k);
                break;
            }
        }
        if (who == address(0)) return;
        vm.prank(who);
        if (validator) grid.cancelValidatorUnbond();
        else grid.cancelWorkerUnbond();
        calls[this.cancelUnbond.selector]++;
    }

    function withdrawBond(uint256 actorSeed, bool validator) external {
        IBonding.Role role = _role(validator);
        address who;
        IBonding.BondInfo memory b;
        for (uint256 k; k < actors.length; ++k) {
            b = _bond(role, _nth(actorSeed, k));
            // forge-lint: disable-next-line(block-timestamp)
            if (b.unbonding != 0 && block.timestamp >= b.unbondReadyAt) {
                who = _nth(actorSeed, k);
                break;
            }
        }
        if (who == address(0)) return;
        // A full withdrawal ends the worker's operator key at this second, and the key history keeps one key
        // per second: receipts it signed in this same second would lose their signer (LibBonding.operatorAt,
        // LibAudit.requireWorkerSigned). Workers leave a second after their last receipt.
        if (!validator) vm.warp(block.timestamp + 1);
        uint256 before = aipg.balanceOf(who);
        vm.prank(who);
        if (validator) grid.withdrawValidatorBond();
        else grid.withdrawWorkerBond();
        uint256 received = aipg.balanceOf(who) - before;
        if (received != b.unbonding) ghost_payoutMismatch = true;
        ghost_received[who] += received;
        if (validator) {
            ghost_validatorBonded -= received;
            ghost_validatorStake[who] -= received;
        } else {
            ghost_workerBonded -= received;
            ghost_workerStake[who] -= received;
        }
        calls[this.withdrawBond.selector]++;
    }

    // ---------------------------------------------------------------- escrow

    /// @dev Like a new user: deposits, and approves a gateway (twice the deposit) if it had approved none yet.
    function deposit(uint256 actorSeed, uint256 amount, uint256 gatewaySeed) external {
        if (grid.paused()) return;
        address who = _actor(actorSeed);
        amount = _bound(amount, 1, MAX_AMOUNT);
        _mintAndApprove(who, amount);
        vm.prank(who);
        grid.deposit(amount);
        ghost_deposits += amount;
        ghost_depositedIn[who] += amount;
        address gateway = _actor(gatewaySeed);
        if (grid.gatewayAllowance(who, gateway) == 0) {
            vm.prank(who);
            grid.increaseGatewayCap(gateway, 2 * amount);
        }
        calls[this.deposit.selector]++;
    }

    /// @dev `from` pays for `payer`: the payer is credited, `from` spent tokens it never gets back.
    function depositFor(uint256 fromSeed, uint256 payerSeed, uint256 amount) external {
        if (grid.paused()) return;
        address from = _actor(fromSeed);
        address payer = _actor(payerSeed);
        amount = _bound(amount, 1, MAX_AMOUNT);
        _mintAndApprove(from, amount);
        vm.prank(from);
        grid.depositFor(payer, amount);
        ghost_deposits += amount;
        ghost_depositedIn[payer] += amount;
        calls[this.depositFor.selector]++;
    }

    /// @dev Raises (one time in five to unlimited) or lowers a payer's cap for a gateway; both saturate.
    function changeGatewayCap(uint256 actorSeed, uint256 gatewaySeed, uint256 amount, bool increase) external {
        address who = _actor(actorSeed);
        address gateway = _actor(gatewaySeed);
        amount = amount % 5 == 0 ? type(uint256).max : _bound(amount, 0, MAX_AMOUNT);
        uint256 before = grid.gatewayAllowance(who, gateway);
        vm.prank(who);
        if (increase) grid.increaseGatewayCap(gateway, amount);
        else grid.decreaseGatewayCap(gateway, amount);
        uint256 expected;
        if (increase) expected = amount > type(uint256).max - before ? type(uint256).max : before + amount;
        else expected = amount > before ? 0 : before - amount;
        if (grid.gatewayAllowance(who, gateway) != expected) ghost_capMismatch = true;
        calls[this.changeGatewayCap.selector]++;
    }

    function requestDepositWithdrawal(uint256 actorSeed, uint256 amount) external {
        address who;
        uint256 balance;
        for (uint256 k; k < actors.length && balance == 0; ++k) {
            who = _nth(actorSeed, k);
            balance = grid.depositOf(who).balance;
        }
        if (balance == 0) return;
        amount = _bound(amount, 1, balance);
        vm.prank(who);
        grid.requestDepositWithdrawal(amount);
        calls[this.requestDepositWithdrawal.selector]++;
    }

    function withdrawDeposit(uint256 actorSeed) external {
        address who;
        IPayments.DepositInfo memory d;
        for (uint256 k; k < actors.length; ++k) {
            d = grid.depositOf(_nth(actorSeed, k));
            // forge-lint: disable-next-line(block-timestamp)
            if (d.withdrawRequested != 0 && block.timestamp >= d.withdrawReadyAt) {
                who = _nth(actorSeed, k);
                break;
            }
        }
        if (who == address(0)) return;
        uint256 expected = d.withdrawRequested < d.balance ? d.withdrawRequested : d.balance;
        uint256 before = aipg.balanceOf(who);
        vm.prank(who);
        grid.withdrawDeposit();
        uint256 received = aipg.balanceOf(who) - before;
        if (received != expected) ghost_payoutMismatch = true;
        ghost_received[who] += received;
        ghost_deposits -= received;
        calls[this.withdrawDeposit.selector]++;
    }

    // ---------------------------------------------------------------- settlement

    /// @dev One batch by the first actor, from `gatewaySeed` on, that some payer with a balance approved:
    /// debits each such payer a seeded part of min(balance, cap), credits up to three bonded workers.
    /// @dev Its receipts are numbered from the gateway's next receipt number on; the root is not a real tree.
    function settle(uint256 gatewaySeed, uint256 seed, uint32 receiptCount) external {
        if (grid.paused()) return;
        (address gateway, IPayments.PayerDebit[] memory debits, IPayments.WorkerCredit[] memory credits) =
            _planSettlement(gatewaySeed, seed);
        if (debits.length == 0 || credits.length == 0) return;
        bytes32 root = keccak256(abi.encode("batch", ghost_batches + 1, seed));
        _settleAndBook(gateway, root, uint32(_bound(receiptCount, 1, 1000)), debits, credits);
        calls[this.settle.selector]++;
    }

    /// @dev A settlement the diamond accepts (empty arrays when there is none to make): the first gateway
    /// from `gatewaySeed` on that some payer with a balance approved, a seeded debit of each such payer, and
    /// their total split over up to three bonded workers.
    function _planSettlement(uint256 gatewaySeed, uint256 seed)
        internal
        view
        returns (
            address gateway,
            IPayments.PayerDebit[] memory debits,
            IPayments.WorkerCredit[] memory credits
        )
    {
        uint256 n = actors.length;
        debits = new IPayments.PayerDebit[](n);
        uint256 nDebits;
        uint256 total;
        for (uint256 g; g < n && nDebits == 0; ++g) {
            gateway = _actor(gatewaySeed % n + g);
            total = 0;
            for (uint256 i; i < n; ++i) {
                address payer = actors[i];
                uint256 balance = grid.depositOf(payer).balance;
                uint256 cap = grid.gatewayAllowance(payer, gateway);
                uint256 max = balance < cap ? balance : cap;
                if (max == 0) continue;
                uint256 amount = _bound(uint256(keccak256(abi.encode(seed, "debit", i))), 1, max);
                debits[nDebits++] = IPayments.PayerDebit({payer: payer, amount: amount});
                total += amount;
            }
        }

        credits = new IPayments.WorkerCredit[](3);
        uint256 nCredits;
        uint256 start = seed % n;
        for (uint256 k; k < n && nCredits < 3 && nDebits != 0; ++k) {
            address w = actors[(start + k) % n];
            IBonding.BondInfo memory b = grid.workerBond(w);
            if (b.amount + b.unbonding == 0) continue;
            credits[nCredits++] = IPayments.WorkerCredit({worker: w, gross: 0});
        }
        uint256 left = total;
        for (uint256 k; k < nCredits; ++k) {
            uint256 gross =
                k == nCredits - 1 ? left : _bound(uint256(keccak256(abi.encode(seed, "credit", k))), 0, left);
            left -= gross;
            credits[k].gross = gross;
        }
        assembly ("memory-safe") {
            mstore(debits, nDebits)
            mstore(credits, nCredits)
        }
    }

    /// @dev Settles as `gateway` and books the batch in the ghosts. Returns the batch id.
    function _settleAndBook(
        address gateway,
        bytes32 root,
        uint32 receiptCount,
        IPayments.PayerDebit[] memory debits,
        IPayments.WorkerCredit[] memory credits
    ) internal returns (uint256 batchId) {
        uint64 firstSeq = grid.nextReceiptSeq(gateway);
        // now and then a gateway tries to reuse its last receipt number or skip one: always refused
        if (uint256(root) % 8 == 0) {
            uint64 wrong = firstSeq != 0 && uint256(root) % 16 == 0 ? firstSeq - 1 : firstSeq + 1;
            vm.prank(gateway);
            (bool ok,) =
                address(grid).call(abi.encodeCall(grid.settle, (root, wrong, receiptCount, debits, credits)));
            if (ok) ghost_sequenceAccepted = true;
        }
        vm.prank(gateway);
        batchId = grid.settle(root, firstSeq, receiptCount, debits, credits);

        ghost_batches++;
        uint256 share;
        for (uint256 k; k < credits.length; ++k) {
            share += credits[k].gross * validatorBps / BPS;
        }
        ghost_batchShare[batchId] = share;
        if (grid.getBatch(batchId).rewardLeft != share) ghost_batchShareMismatch = true;
        for (uint256 i; i < debits.length; ++i) {
            ghost_debited[debits[i].payer] += debits[i].amount;
            ghost_deposits -= debits[i].amount;
        }
        for (uint256 k; k < credits.length; ++k) {
            uint256 gross = credits[k].gross;
            uint256 net = gross * workerBps / BPS;
            uint256 toValidators = gross * validatorBps / BPS;
            ghost_earned[credits[k].worker] += net;
            ghost_earnings += net;
            ghost_validatorPool += toValidators;
            ghost_protocolFees += gross - net - toValidators;
        }
    }

    function withdrawEarnings(uint256 actorSeed) external {
        address who;
        uint256 earned;
        for (uint256 k; k < actors.length && earned == 0; ++k) {
            who = _nth(actorSeed, k);
            earned = grid.earningsOf(who);
        }
        if (earned == 0) return;
        uint256 before = aipg.balanceOf(who);
        vm.prank(who);
        grid.withdrawEarnings();
        uint256 received = aipg.balanceOf(who) - before;
        if (received != earned) ghost_payoutMismatch = true;
        ghost_received[who] += received;
        ghost_earnings -= received;
        calls[this.withdrawEarnings.selector]++;
    }

    function withdrawProtocolFees() external {
        uint256 fees = grid.protocolFees();
        if (fees == 0) return;
        uint256 before = aipg.balanceOf(treasury);
        grid.withdrawProtocolFees();
        uint256 received = aipg.balanceOf(treasury) - before;
        if (received != fees) ghost_payoutMismatch = true;
        ghost_protocolFees -= received;
        ghost_protocolFeesPaid += received;
        calls[this.withdrawProtocolFees.selector]++;
    }

    // ---------------------------------------------------------------- environment

    function warp(uint256 secs) external {
        secs = _bound(secs, 1, 2 days);
        vm.warp(block.timestamp + secs);
        vm.roll(block.number + 1);
        calls[this.warp.selector]++;
    }

    /// @dev Pausing must never trap money: withdrawals keep working, new money and work wait. Pauses are
    /// rare and the next toggle lifts them, so most of a run is unpaused.
    function togglePause(uint256 seed) external {
        bool isPaused = grid.paused();
        if (!isPaused && seed % 4 != 0) return;
        vm.prank(gridOwner);
        if (isPaused) grid.unpause();
        else grid.pause();
        calls[this.togglePause.selector]++;
    }
}
