import SMETSCore
import SMETSDevices
import SMETSStore

/// What the DUIS front asks of the devices beyond joins, tenancy and firmware: a top-up sent over
/// the WAN (2.2), the hub's whitelist (8.11) and the supplier's contact details (3.4, through
/// ``changeSupplier(premises:provider:name:telephone:)``). Each change is committed before it is answered.
extension Engine {
    /// A meter's answer to a WAN top-up: the ConsumerTopUpResponse fields, and whether the store kept it.
    public struct WANTopUpOutcome: Sendable, Hashable {
        public var result: Prepayment.TopUpResult
        public var value: Int32
        public var creditRemaining: Int32
        /// False when the store failed: nothing was kept (result `rejectedError`).
        public var stored: Bool
    }

    /// The Prepayment machine takes a top-up of `value` pence (nil: the UTRN failed the DCC's
    /// checks, so the meter refuses it as invalid) at `meter`; its changes are committed in the
    /// transaction that read its facts, then its events are published.
    public func topUpOverWAN(meter: EUI64, code: String, value: Int32?, source: UInt8, from sender: EUI64) -> WANTopUpOutcome {
        let machine = Prepayment(device: meter)
        let now = self.now()
        var asked = Prepayment.Input.wanTopUp(code: code, value: value, source: source, from: sender,
                                              facts: .init(balance: nil, seenByMeter: false, senderPPMID: nil, now: now))
        let fallback = asked
        func answer(_ actions: [Prepayment.Action], stored: Bool) -> WANTopUpOutcome {
            for case .respond(.consumerTopUpResponse(let response)) in actions {
                return WANTopUpOutcome(result: Prepayment.TopUpResult(rawValue: response.result) ?? .rejectedError, value: response.topUpValue,
                                       creditRemaining: response.creditRemaining, stored: stored)
            }
            return WANTopUpOutcome(result: .rejectedError, value: 0, creditRemaining: 0, stored: false)
        }
        let actions: [Prepayment.Action]
        do {
            actions = try store.write { tx in
                asked = try Self.prepaymentInput(fallback, meter: meter, sender: nil, tx: tx)
                let actions = machine.receive(asked)
                for case .persist(let change) in actions { try Self.apply(change, device: meter, tx: tx) }
                return actions
            }
        } catch {
            logStoreFailure(device: meter, command: "TopUpDevice (DUIS 2.2)", status: .failure, error: error)
            return answer(machine.storeFailed(asked), stored: false)
        }
        for case .event(let event) in actions { publish(event, device: meter, now: now) }
        return answer(actions, stored: true)
    }

    /// The devices on `hub`'s whitelist (its device log): those of its premises in a status the
    /// HAN lets join, in EUI order.
    public func whitelist(of hub: EUI64) -> [Device] {
        let snapshot = snapshot()
        guard let chf = snapshot.devices[hub] else { return [] }
        return (snapshot.premises[chf.premisesID] ?? []).compactMap { snapshot.devices[$0] }
            .filter { $0.type != .chf && HANMembership.joinableStatuses.contains($0.status) }
            .sorted { $0.id < $1.id }
    }

    /// DUIS 8.11 on the hub's whitelist. Add: a Pending device of the hub's premises becomes
    /// Whitelisted (one already on the list stays as it is). Remove: a device on the list leaves the
    /// hub if it had joined and goes back to Pending, so the HAN no longer lets it join (a Pending one
    /// stays as it is). Any other status is refused. Returns the device before and after; the change
    /// is committed before anyone is told.
    public func updateHANDeviceLog(hub hubID: EUI64, device id: EUI64, add: Bool) throws -> (before: Device, after: Device) {
        let (before, after) = try serialized { state -> (Device, Device) in
            guard let hub = state.devices[hubID], hub.type == .chf else { throw DomainError(.notAHub, "\(hubID) is not a Communications Hub") }
            guard let device = state.devices[id] else { throw DomainError(.deviceNotFound, "no device \(id)") }
            guard device.type != .chf, device.premisesID == hub.premisesID else {
                throw DomainError(.invalidState, "\(id) is not a HAN device of \(hubID)'s premises \(hub.premisesID)")
            }
            var changed = device
            if add {
                if device.status == .pending {
                    changed.status = .whitelisted
                } else if !HANMembership.joinableStatuses.contains(device.status) {
                    throw DomainError(.invalidState, "\(id) is \(device.status); only a Pending device is added to a hub's whitelist")
                }
            } else if device.status != .pending {
                guard HANMembership.joinableStatuses.contains(device.status) else {
                    throw DomainError(.invalidState, "\(id) is \(device.status), not on \(hubID)'s whitelist")
                }
                if device.hub != nil { changed = try HANMembership.leave(device: device) }
                changed.status = .pending
            }
            if changed != device {
                try store.write { try $0.save(changed, origin: .api) }
                state.devices[id] = changed
            }
            return (device, changed)
        }
        let time = now()
        if let hub = before.hub, after.hub == nil {
            events.publish(.deviceLeft, device: id, time: time, data: ["hub": .string(hub.description)])
        }
        if before.status != after.status {
            events.publish(.deviceStatus, device: id, time: time, data: ["status": .string(after.status.rawValue), "cause": "duis.8.11"])
        }
        return (before, after)
    }

    /// The supplier's name and telephone number the premises' meter holds (3.4, supplier.change).
    public func supplierContact(premises: String) throws -> (name: String?, telephone: String?) {
        try store.read { try $0.supplierContact(premises: premises) }
    }

    /// The provider ID the premises' meter holds (0 when none was recorded).
    public func supplierProvider(premises: String) throws -> UInt32 {
        try store.read { try $0.supplier(premises: premises) }.flatMap { UInt32($0, radix: 16) } ?? 0
    }
}
