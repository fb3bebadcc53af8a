"""Writes bench/qa/sample.jsonl: the labelled question set over data/sample.

Each question was written by hand against the documents: `relevant` names
the document(s) that answer it, `passage` quotes the sentence that does
(markup aside), `kind` is one of
  direct      - asked in the document's own words;
  paraphrase  - asked in other words, sharing (almost) no content word with
                the passage;
  identifier  - names a number, code, law or product the passage holds;
  followup    - only makes sense after `history` (`standalone` says what
                it means on its own);
  uncovered   - the documents do not answer it (relevant is empty): some
                off-topic (`offtopic`: true), some close to a policy but
                not in it.
Kept as a script so the set is reviewed as code: `python3 bench/qa/make_sample.py`.
"""
import json
import os

S = "data/sample/"
Q = []


def q(kind, query, doc, passage, **kw):
    d = {"id": "q%03d" % (len(Q) + 1), "query": query,
         "relevant": [S + x for x in ([doc] if isinstance(doc, str) else doc)],
         "passage": passage, "kind": kind}
    d.update(kw)
    Q.append(d)


def follow(query, history, standalone, doc, passage):
    q("followup", query, doc, passage,
      history=[{"role": "user", "content": history[0]},
               {"role": "assistant", "content": history[1]}],
      standalone=standalone)


def uncovered(query, offtopic):
    Q.append({"id": "q%03d" % (len(Q) + 1), "query": query, "relevant": [],
              "passage": "", "kind": "uncovered", "offtopic": offtopic})


# --- direct ---------------------------------------------------------------
q("direct", "How many days of paid annual leave does a full-time employee get?",
  "annual-leave.md", "Every full-time employee gets 25 days of paid annual leave (vacation) per year")
q("direct", "How many unused vacation days can I carry over into the next year?",
  "annual-leave.md", "You can carry over up to 5 unused days into the next leave year.")
q("direct", "By when must carried-over days be used?",
  "annual-leave.md", "Carried-over days must be used by 31 March")
q("direct", "How much notice do I need to give for 3 to 10 consecutive days of leave?",
  "annual-leave.md", "For 3 to 10 consecutive days, give at least 2 weeks' notice.")
q("direct", "How many days of compassionate leave do I get on the death of a close family member?",
  "annual-leave.md", "compassionate leave (5 days on the death of a close family member)")
q("direct", "What happens if I fall ill during my annual leave?",
  "annual-leave.md", "the sick days are converted back into annual leave days and returned to your balance")
q("direct", "Do I need a doctor's note for the first three days of sickness?",
  "sick-leave.md", "Days 1 to 3: you can self-certify. No doctor's note is needed.")
q("direct", "By what time must I tell my manager that I am sick?",
  "sick-leave.md", "tell your manager before 10:00 local time, by phone or a direct message")
q("direct", "How much sick pay do I get for the first 20 working days?",
  "sick-leave.md", "First 20 working days | 100% of basic salary")
q("direct", "How many days of paid carer's leave can I take for a sick child?",
  "sick-leave.md", "You can take up to 5 days of paid carer's leave per year for this")
q("direct", "How long is primary caregiver leave?",
  "parental-leave.md", "Up to 26 weeks of leave.")
q("direct", "How much leave does the secondary caregiver get?",
  "parental-leave.md", "4 weeks of leave at full basic salary.")
q("direct", "How many keeping in touch days can I work during parental leave?",
  "parental-leave.md", "You can work up to 10 \"keeping in touch\" days during primary caregiver leave")
q("direct", "How long before parental leave must I tell my manager?",
  "parental-leave.md", "Tell your manager and the People Team at least 8 weeks before you plan to start leave.")
q("direct", "What are the core hours?",
  "working-hours.md", "Core hours are 10:00 to 16:00, Monday to Friday")
q("direct", "What is the on-call allowance per week?",
  "working-hours.md", "Engineers on the on-call rota receive an on-call allowance of €150 per week on call")
q("direct", "How many hours is the standard working week?",
  "working-hours.md", "The standard full-time working week at Fernhill Labs is 39 hours")
q("direct", "Within how long must time off in lieu be taken?",
  "working-hours.md", "TOIL must be taken within 3 months of being earned")
q("direct", "How many days per week do hybrid employees spend in the office?",
  "remote-work.md", "Hybrid employees spend at least 2 days per week in the office.")
q("direct", "How many days a year can I work from another country?",
  "remote-work.md", "for up to 20 working days per calendar year")
q("direct", "What is the home office allowance?",
  "remote-work.md", "a one-off €400 when you join, for a desk, chair or lighting")
q("direct", "Above what amount is an itemised VAT receipt required for expenses?",
  "expenses.md", "For any amount over €50 an itemised VAT receipt is required")
q("direct", "Within how many days must I submit an expense claim?",
  "expenses.md", "Submit within 30 days of the expense.")
q("direct", "What is the monthly limit on a company credit card?",
  "expenses.md", "with a monthly limit of €3,000")
q("direct", "What is the mileage rate for using my own car?",
  "expenses.md", "Mileage (own car) | €0.35 per km")
q("direct", "What is the hotel limit per night in London?",
  "business-travel.md", "London, Paris, Amsterdam, Munich | €250")
q("direct", "What is the daily allowance for meals when travelling overnight?",
  "business-travel.md", "you receive a daily allowance of €45 per day for meals and incidentals")
q("direct", "Which class can I fly on flights of more than 6 hours?",
  "business-travel.md", "Flights of more than 6 hours: premium economy.")
q("direct", "How long must my password be?",
  "password-policy.md", "At least 14 characters long.")
q("direct", "After how many failed sign-in attempts is my account locked?",
  "password-policy.md", "After 10 failed sign-in attempts, your account is locked for 15 minutes.")
q("direct", "Are SMS codes allowed for multi-factor authentication?",
  "password-policy.md", "SMS codes are not allowed, because phone numbers can be hijacked.")
q("direct", "How often are laptops replaced?",
  "equipment.md", "Laptops are replaced every 3 years")
q("direct", "What is the peripherals budget?",
  "equipment.md", "Each employee has a peripherals budget of €600 every 3 years")
q("direct", "Within how many working days must I return equipment when I leave?",
  "equipment.md", "within 10 working days of your last day")
q("direct", "How long is the probation period?",
  "onboarding.md", "Every new employee has a 6-month probation period.")
q("direct", "On which day of the week do new joiners start?",
  "onboarding.md", "New joiners start on a Monday, at 09:30")
q("direct", "When is pay day?",
  ["compensation-payroll.md", "onboarding.md"], "Salaries are paid monthly, on the 25th of each month.")
q("direct", "What is the annual bonus target?",
  "compensation-payroll.md", "Every permanent employee has a bonus target of 10% of basic salary (15% for directors).")
q("direct", "How many salary payments do employees in Portugal receive?",
  "compensation-payroll.md", "receive their annual salary in 14 payments")
q("direct", "What is the yearly learning budget?",
  "learning-development.md", "Every permanent employee has a learning budget of €1,500 per calendar year.")
q("direct", "How many paid study days do I get per year?",
  "learning-development.md", "you have 5 paid study days per year for learning")
q("direct", "How many review cycles are there each year?",
  "performance-reviews.md", "Fernhill Labs runs two review cycles a year")
q("direct", "How long does a performance improvement plan last?",
  "performance-reviews.md", "a PIP lasts 60 days")
q("direct", "What salary increase comes with a promotion?",
  ["performance-reviews.md", "compensation-payroll.md"], "Successful promotions take effect on 1 January with a salary increase of at least 8%.")
q("direct", "Can I report wrongdoing anonymously?",
  "whistleblowing.md", "You can report anonymously")
q("direct", "How quickly is a whistleblowing report acknowledged?",
  "whistleblowing.md", "We acknowledge your report within 7 days of receipt.")
q("direct", "What value of gifts may I accept from a supplier?",
  "code-of-conduct.md", "You may accept gifts or hospitality worth up to €75 per occasion from a customer or supplier")
q("direct", "Within how many days must I declare a conflict of interest?",
  "code-of-conduct.md", "Declare any actual or potential conflict in Haven under Declarations within 14 days of becoming aware of it.")
q("direct", "How quickly does the People Team acknowledge a harassment complaint?",
  "anti-harassment.md", "The People Team acknowledges a formal complaint within 2 working days.")
q("direct", "Within how many hours must a personal data breach be notified to the Data Protection Commission?",
  "data-protection.md", "notifies the Data Protection Commission (Ireland, our lead supervisory authority) within 72 hours")
q("direct", "How long are IT and security logs kept?",
  ["data-protection.md", "acceptable-use.html"], "IT and security logs | 13 months")
q("direct", "How long are CCTV recordings kept?",
  "data-protection.md", "CCTV at office entrances | 30 days")
q("direct", "How much does the company contribute to my pension if I contribute 5%?",
  "benefits.html", "5%5%10%")
q("direct", "What is the wellbeing allowance?",
  "benefits.html", "Wellbeing allowance: €300 per year for gym membership, sports clubs, yoga classes, meditation apps or running events.")
q("direct", "How much is the life assurance lump sum?",
  "benefits.html", "Life assurance: a lump sum of 4 times your annual basic salary paid to your nominated beneficiaries.")
q("direct", "When do screens lock automatically?",
  "information-security.html", "Screens lock automatically after 5 minutes of inactivity")
q("direct", "Can I use USB storage devices on my company laptop?",
  "information-security.html", "USB storage devices are blocked on company laptops.")
q("direct", "Within how long must a security incident be reported?",
  ["information-security.html", "data-protection.md", "password-policy.md"],
  "within 1 hour of noticing it")
q("direct", "Can I mine cryptocurrency on a company laptop?",
  "acceptable-use.html", "mine cryptocurrency or run any compute job not related to your work")
q("direct", "Can I paste customer personal data into an AI tool?",
  "acceptable-use.html", "Never paste customer personal data or credentials into any AI tool, approved or not.")
q("direct", "How far ahead can desks be booked?",
  "office-facilities.html", "All desks are bookable in Deskly, up to 3 weeks ahead.")
q("direct", "How much does a replacement badge cost?",
  "office-facilities.html", "A replacement for a lost badge costs €25, deducted from salary; the first replacement is free.")
q("direct", "What are the opening hours of the Lisbon office?",
  "office-facilities.html", "08:00 to 20:00, Monday to Friday")

# --- paraphrase (no content word shared with the passage) -------------------
q("paraphrase", "How much time off for holidays am I entitled to each year?",
  "annual-leave.md", "Every full-time employee gets 25 days of paid annual leave (vacation) per year")
q("paraphrase", "I'm unwell, do I need a note from my GP straight away?",
  "sick-leave.md", "Days 1 to 3: you can self-certify. No doctor's note is needed.")
q("paraphrase", "What do new dads get when their baby is born?",
  "parental-leave.md", "4 weeks of leave at full basic salary.")
q("paraphrase", "When should I be reachable during the day?",
  "working-hours.md", "Core hours are 10:00 to 16:00, Monday to Friday")
q("paraphrase", "Is there money to set up a desk and chair in my flat?",
  "remote-work.md", "a one-off €400 when you join, for a desk, chair or lighting")
q("paraphrase", "I lost the slip from a taxi ride, can I still get my money back?",
  "expenses.md", "If a receipt is lost, complete the missing receipt declaration in Ledgerly.")
q("paraphrase", "Can I sit in a nicer seat on a long-haul trip?",
  "business-travel.md", "Flights of more than 6 hours: premium economy.")
q("paraphrase", "Do I have to change my login secret every few months?",
  "password-policy.md", "we do not force you to change your password every 90 days")
q("paraphrase", "My notebook computer got stolen on the bus, what now?",
  "equipment.md", "Report a lost or stolen device to security@fernhill-labs.example within 1 hour of noticing")
q("paraphrase", "When does the money land in my bank account?",
  "compensation-payroll.md", "Salaries are paid monthly, on the 25th of each month.")
q("paraphrase", "How much can I spend on courses and conferences?",
  "learning-development.md", "Every permanent employee has a learning budget of €1,500 per calendar year.")
q("paraphrase", "What score scale do managers use to grade staff?",
  "performance-reviews.md", "your manager gives an overall rating on a five-point scale")
q("paraphrase", "Will I get fired for reporting fraud by my boss?",
  "whistleblowing.md", "Nobody will suffer any detriment for making a protected disclosure.")
q("paraphrase", "A vendor wants to take me to a fancy dinner, is that ok?",
  "code-of-conduct.md", "You may accept gifts or hospitality worth up to €75 per occasion from a customer or supplier")
q("paraphrase", "A colleague keeps shouting at me in front of others, what can I do?",
  "anti-harassment.md", "Talk to a Dignity at Work contact")
q("paraphrase", "Someone wants a copy of everything we hold about them, who handles that?",
  "data-protection.md", "Forward any such request (it may arrive by email, chat, a support ticket or phone, and does not need to mention GDPR) to dpo@fernhill-labs.example within 2 working days.")
q("paraphrase", "Does the firm pay for my teeth and glasses?",
  "benefits.html", "Dental and optical cover is included up to €500 per person per year.")
q("paraphrase", "Can I plug a thumb drive into my work machine?",
  "information-security.html", "USB storage devices are blocked on company laptops.")
q("paraphrase", "Is it fine to check my bank or book the dentist from my work computer?",
  "acceptable-use.html", "Reasonable personal use is allowed: checking your bank, booking a dentist appointment, reading the news at lunch.")
q("paraphrase", "Where do we gather when the fire alarm goes off in Dublin?",
  "office-facilities.html", "go to the assembly point (Grand Canal Square in Dublin, Largo do Conde Barão in Lisbon)")

# --- identifiers, numbers, names ----------------------------------------------
q("identifier", "Which law is Portuguese Law 93/2021 about?",
  "whistleblowing.md", "It implements the EU Whistleblower Directive (2019/1937), the Irish Protected Disclosures (Amendment) Act 2022 and Portuguese Law 93/2021.")
q("identifier", "What does Directive 2019/1937 cover?",
  "whistleblowing.md", "It implements the EU Whistleblower Directive (2019/1937)")
q("identifier", "Law 58/2019",
  "data-protection.md", "the Irish Data Protection Act 2018 and Portuguese Law 58/2019 apply to everything we do with it")
q("identifier", "What is the €9.60 allowance?",
  "compensation-payroll.md", "Meal card (Portugal only) | €9.60 per working day")
q("identifier", "Ctrl+L",
  "information-security.html", "lock manually (Ctrl+L or Ctrl+Cmd+Q) whenever you walk away")
q("identifier", "What is 21 Hanover Quay?",
  "office-facilities.html", "Floors 3 and 4, 21 Hanover Quay, Dublin 2")
q("identifier", "What is Ledgerly used for?",
  "expenses.md", "All claims are submitted in Ledgerly, our expenses tool.")
q("identifier", "What is TravelDesk?",
  "business-travel.md", "Every trip needs your manager's approval in TravelDesk, our booking tool, before anything is booked.")
q("identifier", "What is Deskly?",
  ["office-facilities.html", "remote-work.md"], "All desks are bookable in Deskly, up to 3 weeks ahead.")
q("identifier", "lantern-otter-cobalt-harvest",
  "password-policy.md", "We recommend a passphrase of four or more random words, for example lantern-otter-cobalt-harvest.")
q("identifier", "dpo@fernhill-labs.example",
  "data-protection.md", "Data Protection Officer: dpo@fernhill-labs.example")
q("identifier", "What is the RoPA?",
  "data-protection.md", "every processing activity has a lawful basis recorded in the record of processing activities (RoPA)")

# --- follow-ups ----------------------------------------------------------------
follow("And how much notice for more than ten days?",
       ("How do I request annual leave?", "Request it in Haven under Time off, New request [1]."),
       "How much notice do I need to give for more than 10 consecutive days of annual leave?",
       "annual-leave.md", "For more than 10 consecutive working days, give at least 6 weeks' notice.")
follow("What about after 40 days?",
       ("How much sick pay do I get?", "100% of basic salary for the first 20 working days [1]."),
       "How much sick pay do I get after 40 working days of sickness?",
       "sick-leave.md", "After 40 working days | Statutory sick pay only")
follow("And in Zurich?",
       ("What is the hotel limit in Dublin?", "€180 per night [1]."),
       "What is the hotel limit per night in Zurich?",
       "business-travel.md", "New York, San Francisco, Zurich | €320")
follow("Can it be split?",
       ("How long is secondary caregiver leave?", "4 weeks at full basic salary [1]."),
       "Can secondary caregiver leave be split into blocks?",
       "parental-leave.md", "It can be taken in one block or in two blocks of 2 weeks")
follow("What if I lose one?",
       ("How many security keys do I get?", "Two hardware security keys [1]."),
       "What happens if I lose a hardware security key?",
       "password-policy.md", "If you lose a security key, report it to IT through the IT Help portal on the same day")
follow("And how long can it be extended?",
       ("How long is the probation period?", "6 months [1]."),
       "How long can the probation period be extended?",
       "onboarding.md", "probation can be extended once, by up to 3 months")
follow("When is it paid?",
       ("What is the annual bonus target?", "10% of basic salary [1]."),
       "When is the annual bonus paid?",
       "compensation-payroll.md", "Bonuses are paid with the March salary for the previous calendar year.")
follow("Does it carry over?",
       ("What is the learning budget?", "€1,500 per calendar year [1]."),
       "Does unused learning budget carry over to the next year?",
       "learning-development.md", "Unused budget does not carry over to the next year.")
follow("And on Sundays?",
       ("What is the overtime rate on weekdays?", "1.5 times the hourly rate [1]."),
       "What is the overtime rate on Sundays?",
       "working-hours.md", "2 times on Sundays and public holidays")
follow("Who approves above that?",
       ("Up to what amount does my manager approve expense claims?", "Up to €1,000 [1]."),
       "Who approves expense claims above €1,000?",
       "expenses.md", "Claims above €1,000 also need approval from your department head.")

# --- not covered -------------------------------------------------------------
for text in ("What is the capital of Australia?",
             "How do I bake sourdough bread?",
             "Who won the football world cup in 2010?",
             "What is the boiling point of water at the top of Mount Everest?",
             "Write me a poem about the sea.",
             "How do I configure a Kubernetes ingress controller?"):
    uncovered(text, True)
# close to the policies, but none of them says
for text in ("Is there a dress code in the office?",
             "Can I bring my dog to the office?",
             "Who is the CEO of Fernhill Labs?",
             "What is the stock price of Fernhill Labs?",
             "Does the company offer a company car?",
             "What is the retirement age at Fernhill Labs?"):
    uncovered(text, False)

if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample.jsonl")
    with open(out, "w") as f:
        for d in Q:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    kinds = {}
    for d in Q:
        kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
    print(out, len(Q), kinds)
