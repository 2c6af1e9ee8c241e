// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";
import {console} from "forge-std/console.sol";
import {IAudit} from "../../src/interfaces/IAudit.sol";
import {IModelRegistry} from "../../src/interfaces/IModelRegistry.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {GridFixture} from "../utils/GridFixture.sol";
import {ReceiptTree} from "../utils/ReceiptTree.sol";

/// @notice Gas per user action, as a user's transaction would pay it: every contract the action touches is
/// cold first (as at the start of a real transaction), and the intrinsic cost (21,000 + calldata, with the
/// EIP-7623 floor) and the refund cap (EIP-3529, 1/5) are applied to the measured execution gas.
/// @dev Regenerate the README table with
/// `forge test --match-path test/gas/GasActions.t.sol -vv` (the rows are printed as markdown).
contract GasActionsTest is GridFixture {
    struct Row {
        string action;
        uint256 execution;
        uint256 refund;
        uint256 txGas;
    }

    Row[] internal rows;

    address internal alice; // worker / payer with a permit key
    uint256 internal aliceKey;
    address internal gateway = makeAddr("gateway");

    bytes32 private constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    function setUp() public override {
        super.setUp();
        (alice, aliceKey) = makeAddrAndKey("alice");
    }

    /// @dev Runs `data` on the diamond as `caller` from cold state and records its gas as a user would pay.
    function _measure(string memory action, address caller, bytes memory data)
        internal
        returns (bytes memory)
    {
        _coolEverything();
        vm.prank(caller);
        (bool ok, bytes memory ret) = address(grid).call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        Vm.Gas memory g = vm.lastCallGas();
        uint256 intrinsic = _intrinsic(data);
        uint256 execution = g.gasTotalUsed;
        uint256 refund = g.gasRefunded > 0 ? uint256(uint64(g.gasRefunded)) : 0;
        uint256 used = 21_000 + intrinsic + execution;
        uint256 maxRefund = used / 5;
        used -= refund < maxRefund ? refund : maxRefund;
        // EIP-7623: a calldata-heavy transaction pays at least the floor
        uint256 floor = 21_000 + 10 * _tokens(data);
        rows.push(
            Row({action: action, execution: execution, refund: refund, txGas: used < floor ? floor : used})
        );
        return ret;
    }

    function _coolEverything() internal {
        vm.cool(address(grid));
        vm.cool(address(aipg));
        vm.cool(address(cutFacet));
        vm.cool(address(loupeFacet));
        vm.cool(address(ownershipFacet));
        vm.cool(address(pauseFacet));
        vm.cool(address(workerFacet));
        vm.cool(address(validatorFacet));
        vm.cool(address(modelFacet));
        vm.cool(address(paymentsFacet));
        vm.cool(address(auditFacet));
        vm.cool(address(randomness));
    }

    function _tokens(bytes memory data) internal pure returns (uint256 tokens) {
        for (uint256 i; i < data.length; ++i) {
            tokens += data[i] == 0 ? 1 : 4;
        }
    }

    function _intrinsic(bytes memory data) internal pure returns (uint256) {
        return 4 * _tokens(data);
    }

    /// @dev `gateway`'s next settlement: `payers` pay `each`, split evenly among `workers`, covering
    /// `receiptCount` receipt numbers from the gateway's next one.
    function _settleData(
        bytes32 root,
        address[] memory payers,
        address[] memory workers,
        uint256 each,
        uint32 receiptCount
    ) internal view returns (bytes memory) {
        IPayments.PayerDebit[] memory debits = new IPayments.PayerDebit[](payers.length);
        IPayments.WorkerCredit[] memory credits = new IPayments.WorkerCredit[](workers.length);
        uint256 total = each * payers.length;
        for (uint256 i; i < payers.length; ++i) {
            debits[i] = IPayments.PayerDebit({payer: payers[i], amount: each});
        }
        uint256 perWorker = total / workers.length;
        for (uint256 i; i < workers.length; ++i) {
            uint256 gross = i == workers.length - 1 ? total - perWorker * (workers.length - 1) : perWorker;
            credits[i] = IPayments.WorkerCredit({worker: workers[i], gross: gross});
        }
        return abi.encodeCall(
            IPayments.settle, (root, grid.nextReceiptSeq(gateway), receiptCount, debits, credits)
        );
    }

    function _debits(address[] memory payers) internal pure returns (IPayments.PayerDebit[] memory d) {
        d = new IPayments.PayerDebit[](payers.length);
        for (uint256 i; i < payers.length; ++i) {
            d[i] = IPayments.PayerDebit({payer: payers[i], amount: 1e18});
        }
    }

    function _credits(address[] memory workers) internal pure returns (IPayments.WorkerCredit[] memory c) {
        c = new IPayments.WorkerCredit[](workers.length);
        for (uint256 i; i < workers.length; ++i) {
            c[i] = IPayments.WorkerCredit({worker: workers[i], gross: 1e18});
        }
    }

    /// @dev `n` payers with deposits approving `gateway` (`cap`) and `n` bonded workers.
    function _population(string memory tag, uint256 n, uint256 cap)
        internal
        returns (address[] memory payers, address[] memory workers)
    {
        payers = new address[](n);
        workers = new address[](n);
        for (uint256 i; i < n; ++i) {
            payers[i] = makeAddr(string.concat(tag, "-payer-", vm.toString(i)));
            workers[i] = makeAddr(string.concat(tag, "-worker-", vm.toString(i)));
            _fund(payers[i], 100e18);
            vm.startPrank(payers[i]);
            grid.deposit(100e18);
            grid.increaseGatewayCap(gateway, cap);
            vm.stopPrank();
            _bondWorker(workers[i], WORKER_MIN);
        }
    }

    function test_gasPerUserAction() public {
        // ---- bonding
        _fund(alice, 100_000e18);
        _measure("bondWorker", alice, abi.encodeCall(grid.bondWorker, (WORKER_MIN, address(0))));
        _measure("increaseWorkerBond", alice, abi.encodeCall(grid.increaseWorkerBond, (500e18)));
        _measure("setWorkerOperator", alice, abi.encodeCall(grid.setWorkerOperator, (makeAddr("alice-hot"))));
        _measure("requestWorkerUnbond", alice, abi.encodeCall(grid.requestWorkerUnbond, (500e18)));
        _measure("cancelWorkerUnbond", alice, abi.encodeCall(grid.cancelWorkerUnbond, ()));
        vm.prank(alice);
        grid.requestWorkerUnbond(500e18);
        vm.warp(block.timestamp + UNBOND_DELAY);
        _measure("withdrawWorkerBond", alice, abi.encodeCall(grid.withdrawWorkerBond, ()));
        _measure("bondValidator", alice, abi.encodeCall(grid.bondValidator, (VALIDATOR_MIN, address(0))));

        // ---- models (owner)
        _measure(
            "registerModel",
            owner,
            abi.encodeCall(
                grid.registerModel,
                (
                    "llama-3.1-8b-instruct-q4_k_m",
                    IModelRegistry.ModelKind.Text,
                    keccak256("weights"),
                    keccak256("tokenizer"),
                    8_000_000_000,
                    6_144,
                    IModelRegistry.RateCard({
                        inputPerMTokens: 2e17, outputPerMTokens: 6e17, perMegapixelStep: 0
                    })
                )
            )
        );

        // ---- escrow
        address bob = makeAddr("bob");
        _fund(bob, 1_000e18);
        _measure("deposit (first)", bob, abi.encodeCall(grid.deposit, (100e18)));
        _measure("deposit (top-up)", bob, abi.encodeCall(grid.deposit, (100e18)));
        {
            vm.prank(alice);
            aipg.approve(address(grid), 0);
            uint256 deadline = block.timestamp + 1 hours;
            bytes32 digest = keccak256(
                abi.encodePacked(
                    "\x19\x01",
                    aipg.DOMAIN_SEPARATOR(),
                    keccak256(
                        abi.encode(PERMIT_TYPEHASH, alice, address(grid), 50e18, aipg.nonces(alice), deadline)
                    )
                )
            );
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(aliceKey, digest);
            _measure(
                "depositWithPermit", alice, abi.encodeCall(grid.depositWithPermit, (50e18, deadline, v, r, s))
            );
        }
        _measure("increaseGatewayCap", bob, abi.encodeCall(grid.increaseGatewayCap, (gateway, 1_000e18)));
        _measure("decreaseGatewayCap", bob, abi.encodeCall(grid.decreaseGatewayCap, (gateway, 400e18)));
        _measure("requestDepositWithdrawal", bob, abi.encodeCall(grid.requestDepositWithdrawal, (50e18)));
        vm.warp(block.timestamp + DEPOSIT_DELAY);
        _measure("withdrawDeposit", bob, abi.encodeCall(grid.withdrawDeposit, ()));

        // ---- settlement: n distinct payers and n distinct workers (the worst case per receipt). A first
        // batch makes the pools non-zero, as on a live network.
        {
            (address[] memory payers, address[] memory workers) = _population("warm", 1, 1_000e18);
            uint64 firstSeq = grid.nextReceiptSeq(gateway);
            vm.prank(gateway);
            grid.settle(keccak256("warm"), firstSeq, 1, _debits(payers), _credits(workers));
        }
        uint256[3] memory sizes = [uint256(1), 10, 100];
        for (uint256 k; k < sizes.length; ++k) {
            uint256 n = sizes[k];
            (address[] memory payers, address[] memory workers) = _population(vm.toString(n), n, 1_000e18);
            string memory who = n == 1
                ? "1 payer + 1 worker"
                : string.concat(vm.toString(n), " payers + ", vm.toString(n), " workers");
            _measure(
                string.concat("settle: ", who, ", first credit"),
                gateway,
                _settleData(keccak256(abi.encode("first", n)), payers, workers, 1e18, uint32(n))
            );
            _measure(
                string.concat("settle: ", who, ", repeat"),
                gateway,
                _settleData(keccak256(abi.encode("repeat", n)), payers, workers, 1e18, uint32(n))
            );
            if (n == 1) {
                // One payer, one worker, 1,000 receipts aggregated into one debit and one credit: the cost
                // of a settlement does not depend on how many receipts it covers.
                _measure(
                    "settle: 1 payer + 1 worker, 1,000 receipts, repeat",
                    gateway,
                    _settleData(keccak256("thousand"), payers, workers, 1e18, 1_000)
                );
                uint256 perJob = rows[rows.length - 1].txGas / 1_000;
                console.log(string.concat("settle gas per job at 1,000 receipts: ", vm.toString(perJob)));
                assertLe(perJob, 250, "settlement costs at most 250 gas per job");
                _measure("withdrawEarnings", workers[0], abi.encodeCall(grid.withdrawEarnings, ()));
            }
        }
        {
            (address[] memory payers, address[] memory workers) = _population("unl", 100, type(uint256).max);
            bytes memory first = _settleData(keccak256("unl-first"), payers, workers, 1e18, 100);
            vm.prank(gateway);
            (bool ok,) = address(grid).call(first);
            assertTrue(ok);
            _measure(
                "settle: 100 payers (unlimited caps) + 100 workers, repeat",
                gateway,
                _settleData(keccak256("unl"), payers, workers, 1e18, 100)
            );
        }
        _measure("withdrawProtocolFees", gateway, abi.encodeCall(grid.withdrawProtocolFees, ()));

        _measureAudits();

        console.log("| action | gas (tx) | execution | refund |");
        console.log("|---|---:|---:|---:|");
        for (uint256 i; i < rows.length; ++i) {
            console.log(
                string.concat(
                    "| ",
                    rows[i].action,
                    " | ",
                    _commas(rows[i].txGas),
                    " | ",
                    _commas(rows[i].execution),
                    " | ",
                    _commas(rows[i].refund),
                    " |"
                )
            );
        }
    }

    /// @dev `x` with thousands separators, as in the README table.
    function _commas(uint256 x) internal pure returns (string memory out) {
        if (x < 1_000) return vm.toString(x);
        uint256 rest = x % 1_000;
        string memory pad = rest < 10 ? "00" : rest < 100 ? "0" : "";
        return string.concat(_commas(x / 1_000), ",", pad, vm.toString(rest));
    }

    uint256 internal constant AUDITEE_KEY = uint256(keccak256("gas auditee operator key"));

    /// @dev Audits of a 1,024-receipt batch (10-hash proofs) of signed receipts with 4 active validators (k = 3,
    /// quorum 2): the randomness, each commit (the first opens the audit: proof, range, signature, seats), a
    /// gateway fault report, each reveal, and each kind of verdict. Leaf 0: three PASS votes; leaf 1: three FAIL;
    /// leaf 2: two FAIL, one PASS.
    function _measureAudits() internal {
        (uint256 batchId, IAudit.Receipt[] memory rs, bytes32[] memory leaves) = _auditBatch();
        vm.roll(block.number + RANDOMNESS_DELAY + 1);
        _measure("fixRandomness", gateway, abi.encodeCall(grid.fixRandomness, (batchId)));

        string[3] memory commits = ["commitVote: first (opens the audit)", "commitVote: second", "commitVote: third"];
        for (uint256 l; l < 3; ++l) {
            address[] memory seated = grid.assignedValidators(batchId, leaves[l]);
            assertEq(seated.length, 3);
            for (uint256 v; v < 3; ++v) {
                _run(l == 0, commits[v], seated[v], _commitData(batchId, rs[l], leaves, l, v, seated[v]));
            }
        }
        // A validator served evidence that does not hash to the receipt abstains and reports the gateway
        // (leaf 3, a 10-hash proof).
        bytes32[] memory faultProof = ReceiptTree.proof(leaves, 3);
        _measure(
            "reportGatewayFault",
            makeAddr("validator-0"),
            abi.encodeCall(
                grid.reportGatewayFault,
                (batchId, leaves[3], faultProof, bytes32("RECEIPT_REQUEST_HASH"), keccak256("evidence"))
            )
        );
        vm.warp(uint256(grid.batchAudit(batchId).deadline) + 1);
        string[3] memory reveals = ["revealVote: first", "revealVote: second", "revealVote: third"];
        for (uint256 l; l < 3; ++l) {
            address[] memory seated = grid.assignedValidators(batchId, leaves[l]);
            for (uint256 v; v < 3; ++v) {
                bytes memory data =
                    abi.encodeCall(grid.revealVote, (leaves[l], _voteFor(l, v), _evidence(l, v), _salt(l, v)));
                _run(l == 0, reveals[v], seated[v], data);
            }
        }
        vm.warp(uint256(grid.batchAudit(batchId).revealDeadline) + 1);
        _measure("finalize: PASS, 3 PASS votes", gateway, abi.encodeCall(grid.finalize, (leaves[0])));
        _measure("finalize: FAIL, 3 FAIL votes", gateway, abi.encodeCall(grid.finalize, (leaves[1])));
        _measure(
            "finalize: FAIL, 2 FAIL + 1 PASS (false attestation slashed)",
            gateway,
            abi.encodeCall(grid.finalize, (leaves[2]))
        );
        assertEq(uint8(grid.getAudit(leaves[0]).verdict), uint8(IAudit.Verdict.Pass));
        assertEq(uint8(grid.getAudit(leaves[1]).verdict), uint8(IAudit.Verdict.Fail));
        assertEq(uint8(grid.getAudit(leaves[2]).verdict), uint8(IAudit.Verdict.Fail));
    }

    /// @dev Leaf 0: PASS, PASS, PASS; leaf 1: FAIL, FAIL, FAIL; leaf 2: FAIL, FAIL, PASS.
    function _voteFor(uint256 l, uint256 v) internal pure returns (IAudit.Vote) {
        if (l == 0 || (l == 2 && v == 2)) return IAudit.Vote.Pass;
        return IAudit.Vote.Fail;
    }

    /// @dev A worker whose operator key signs, three more validators (bonded a block before settlement: seats
    /// come from the stakes of the block before), and a settled batch of 1,024 signed receipts.
    function _auditBatch() internal returns (uint256 batchId, IAudit.Receipt[] memory rs, bytes32[] memory leaves) {
        address auditee = makeAddr("auditee");
        _fund(auditee, 2 * WORKER_MIN);
        vm.prank(auditee);
        grid.bondWorker(2 * WORKER_MIN, vm.addr(AUDITEE_KEY));
        for (uint256 i; i < 3; ++i) {
            _bondValidator(makeAddr(string.concat("validator-", vm.toString(i))), VALIDATOR_MIN);
        }
        address auditPayer = makeAddr("audit-payer");
        _fund(auditPayer, 10_000e18);
        vm.startPrank(auditPayer);
        grid.deposit(10_000e18);
        grid.increaseGatewayCap(gateway, type(uint256).max);
        vm.stopPrank();
        vm.roll(block.number + 1);
        vm.warp(block.timestamp + 1);

        uint64 firstSeq = grid.nextReceiptSeq(gateway);
        rs = new IAudit.Receipt[](1024);
        for (uint256 i; i < rs.length; ++i) {
            rs[i] = IAudit.Receipt({
                jobId: keccak256(abi.encode("gas-job", i)),
                gateway: gateway,
                payer: auditPayer,
                worker: auditee,
                modelId: keccak256("model"),
                requestHash: keccak256(abi.encode("request", i)),
                outputHash: keccak256(abi.encode("output", i)),
                inputUnits: 512,
                outputUnits: 256,
                fee: 1e18,
                completedAt: uint64(block.timestamp),
                confidential: false,
                seq: firstSeq + uint64(i)
            });
        }
        leaves = ReceiptTree.leaves(rs);
        IPayments.PayerDebit[] memory debits = new IPayments.PayerDebit[](1);
        debits[0] = IPayments.PayerDebit({payer: auditPayer, amount: 1024e18});
        IPayments.WorkerCredit[] memory credits = new IPayments.WorkerCredit[](1);
        credits[0] = IPayments.WorkerCredit({worker: auditee, gross: 1024e18});
        vm.prank(gateway);
        batchId = grid.settle(ReceiptTree.root(leaves), firstSeq, 1024, debits, credits);
    }

    /// @dev `validator`'s commitVote call data for its vote `v` on leaf `l` of the batch.
    function _commitData(
        uint256 batchId,
        IAudit.Receipt memory r,
        bytes32[] memory leaves,
        uint256 l,
        uint256 v,
        address validator
    ) internal view returns (bytes memory) {
        bytes32 commitment = grid.voteCommitment(leaves[l], validator, _voteFor(l, v), _evidence(l, v), _salt(l, v));
        return abi.encodeCall(
            grid.commitVote, (batchId, r, _signReceipt(AUDITEE_KEY, r), ReceiptTree.proof(leaves, l), commitment)
        );
    }

    /// @dev Measures `data` as `caller` when `measured`, else just runs it.
    function _run(bool measured, string memory action, address caller, bytes memory data) internal {
        if (measured) {
            _measure(action, caller, data);
            return;
        }
        vm.prank(caller);
        (bool ok, bytes memory ret) = address(grid).call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }

    /// @dev `key`'s 65-byte EIP-712 signature (r, s, v) of `r` under the grid's domain.
    function _signReceipt(uint256 key, IAudit.Receipt memory r) internal view returns (bytes memory) {
        (uint8 v, bytes32 rr, bytes32 ss) = vm.sign(key, grid.receiptDigest(r));
        return abi.encodePacked(rr, ss, v);
    }

    function _evidence(uint256 l, uint256 v) internal pure returns (bytes32) {
        return keccak256(abi.encode("evidence", l, v));
    }

    function _salt(uint256 l, uint256 v) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", l, v));
    }
}
